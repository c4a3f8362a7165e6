# The two commands of the README: `make demo` and `make test`. Both install what they need.
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test deps vm-deps vm-test python-deps bench fuzz vectors attack clean

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

## Installs what the VM test needs when missing: qemu-system-x86, linux-image-amd64, busybox-static, cpio, ...
## (tools/vm/run.sh --missing-packages names them).
vm-deps:
	@missing=$$(tools/vm/run.sh --missing-packages); \
	if [ -n "$$missing" ]; then \
	  echo "Installing $$missing (the VM test boots Debian's kernel under qemu)..."; \
	  if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	    echo "$$missing missing and this user cannot install them. Run as root:"; \
	    echo "    apt-get update && apt-get install -y --no-install-recommends $$missing"; exit 1; \
	  fi; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing \
	    || { echo "Could not install them. Run: sudo apt-get install -y --no-install-recommends $$missing"; exit 1; }; \
	  missing=$$(tools/vm/run.sh --missing-packages); \
	  [ -z "$$missing" ] || { echo "Still missing after apt-get install: $$missing"; exit 1; }; \
	fi

## The main job, on the embedded defaults: no configuration needed.
demo: deps
	$(SWIFT) build -c release --product devicesim
	.build/release/devicesim demo

## Every test: the independent check of protocol.md's vectors, the VM test, the attack client against real
## centres, then the Swift test suites.
test: deps vm-deps vectors
	$(SWIFT) build --build-tests
	tools/vm/run.sh .build/debug/devicesim
	python3 tools/attack_client.py --devicesim "$$($(SWIFT) build --show-bin-path)/devicesim"
	$(SWIFT) test

## devicesim against a real kernel's input subsystem: Debian's kernel under qemu, a uinput button (tools/vm/).
vm-test: deps vm-deps
	$(SWIFT) build --product devicesim
	tools/vm/run.sh .build/debug/devicesim

## The attacker's client of tools/attack_client.py (written from protocol.md) against real centres.
attack: deps python-deps
	$(SWIFT) build --product devicesim
	python3 tools/attack_client.py --devicesim "$$($(SWIFT) build --show-bin-path)/devicesim"

## protocol.md's vectors recomputed by an independent implementation (Python, OpenSSL through `cryptography`).
vectors: python-deps
	python3 tools/verify_vectors.py

## `cryptography` (OpenSSL) for the Python tools written from protocol.md, installed from PyPI when missing.
python-deps:
	@python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install --quiet cryptography

## Codec throughput on one core (protocol issue's benchmark).
bench: deps
	$(SWIFT) build -c release --product devicesim
	.build/release/devicesim protocol bench

## libFuzzer on the frame decoder, SECONDS (default 60).
fuzz: deps
	fuzz/run.sh $(or $(SECONDS),60)

clean:
	rm -rf .build .build-*
