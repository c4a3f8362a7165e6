# The two commands of the README: `make demo` and `make test`. Both install what they need.
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test deps bench fuzz vectors clean

## Installs libudev-dev, libsqlite3-dev and pkg-config (CDeviceSys, GRDB) when missing.
deps:
	@if ! pkg-config --exists libudev sqlite3 2>/dev/null; then \
	  echo "Installing libudev-dev, libsqlite3-dev and pkg-config (needed by CDeviceSys and GRDB)..."; \
	  if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	    echo "libudev-dev or libsqlite3-dev is missing and this user cannot install it. Run as root:"; \
	    echo "    apt-get update && apt-get install -y libudev-dev libsqlite3-dev pkg-config"; exit 1; \
	  fi; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libudev-dev libsqlite3-dev pkg-config \
	    || { echo "Could not install them. Run: sudo apt-get install -y libudev-dev libsqlite3-dev pkg-config"; exit 1; }; \
	fi

## The main job, on the embedded defaults: no configuration needed.
demo: deps
	$(SWIFT) build -c release --product devicesim
	.build/release/devicesim demo

## Every test: the independent check of protocol.md's vectors, then the Swift test suites.
test: deps vectors
	$(SWIFT) build --build-tests
	$(SWIFT) test

## protocol.md's vectors recomputed by an independent implementation (Python, OpenSSL through `cryptography`).
vectors:
	@python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install --quiet cryptography
	python3 tools/verify_vectors.py

## Codec throughput on one core (protocol issue's benchmark).
bench: deps
	$(SWIFT) build -c release --product devicesim
	.build/release/devicesim protocol bench

## libFuzzer on the frame decoder, SECONDS (default 60).
fuzz: deps
	fuzz/run.sh $(or $(SECONDS),60)

clean:
	rm -rf .build .build-*
