# The two commands of the README: `make demo` and `make test`. Both install what they need.
SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test deps pg-deps vm-deps browser-deps browser-test console-test vm-test python-deps dc09-deps dc09-test dc09-gateway-test sip-deps sip-test sip-kamailio-test deploy-check failover-test bench device-binary hot-symbols fuzz vectors links attack clean

# The commit a devicesim binary was built from, written beside it after each build (`-modified` when the work
# tree differs), with the binary's size and time so that a later `swift build` alone reads "unknown":
# Sources/DeviceKit/Support/BuildStamp.swift reads it for `devicesim --version`, the centre's center_build_info
# metric and the load report's context.
define stamp
@commit=$$(git rev-parse HEAD 2>/dev/null || echo unknown); \
git diff --quiet HEAD 2>/dev/null || commit="$$commit-modified"; \
printf '%s\n%s\n' "$$commit" "$$(stat -c '%s %Y' $(1))" > $(dir $(1))devicesim.commit
endef

# Selenium from PyPI, in a virtual environment of the project's own.
BROWSER_VENV := .build/browser-venv
# The DC-09 peers from PyPI (pysiaalarm, dc09-spt), in another.
DC09_VENV := .build/dc09-venv

## Installs libudev-dev, libsodium-dev, libsqlite3-dev and pkg-config (CDeviceSys, GRDB) when missing.
deps:
	@if ! pkg-config --exists libudev libsodium sqlite3 2>/dev/null; then \
	  echo "Installing libudev-dev, libsodium-dev, libsqlite3-dev and pkg-config (needed by CDeviceSys and GRDB)..."; \
	  if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	    echo "libudev-dev, libsodium-dev or libsqlite3-dev is missing and this user cannot install it. Run as root:"; \
	    echo "    apt-get update && apt-get install -y libudev-dev libsodium-dev libsqlite3-dev pkg-config"; exit 1; \
	  fi; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libudev-dev libsodium-dev libsqlite3-dev pkg-config \
	    || { echo "Could not install them. Run: sudo apt-get install -y libudev-dev libsodium-dev libsqlite3-dev pkg-config"; exit 1; }; \
	fi

## Installs PostgreSQL's server (Debian's postgresql) when missing: the journal's PostgreSQL tests make, restart,
## kill and remove throwaway clusters of their own on free loopback ports (tools/pg_cluster.sh). It is installed with
## service starts denied (a policy-rc.d for the time of the install, when there is none): Debian's own cluster
## (5432) is made but not started, so that a start failing where there is no systemd cannot fail the install.
## And iproute2 (`ip`), for the failover check's network namespaces.
pg-deps:
	@bindir=$$(pg_config --bindir 2>/dev/null); \
	if ! [ -x "$$bindir/initdb" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "Installing postgresql (the journal's PostgreSQL tests run throwaway clusters of their own, tools/pg_cluster.sh)..."; \
	  if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	    echo "postgresql is missing and this user cannot install it. Run as root:"; \
	    echo "    apt-get update && apt-get install -y --no-install-recommends postgresql"; exit 1; \
	  fi; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    trap '$(SUDO) rm -f /usr/sbin/policy-rc.d' EXIT; trap 'exit 1' HUP INT TERM; \
	    printf '#!/bin/sh\n# make pg-deps: no service starts while apt-get installs postgresql.\nexit 101\n' \
	      | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null && $(SUDO) chmod 755 /usr/sbin/policy-rc.d; \
	  fi; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql \
	    || { echo "Could not install it. Run: sudo apt-get install -y --no-install-recommends postgresql"; exit 1; }; \
	  bindir=$$(pg_config --bindir 2>/dev/null); \
	  [ -x "$$bindir/initdb" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	    || { echo "Still no PostgreSQL server (initdb) after apt-get install postgresql"; exit 1; }; \
	fi
	@if ! command -v ip >/dev/null; then \
	  echo "Installing iproute2 (tools/check_failover.py puts centre nodes in network namespaces of their own)..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 \
	    || { echo "Could not install it. Run: sudo apt-get install -y iproute2"; exit 1; }; \
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

## Installs what the browser checks (the load reports, the operators' console) need when missing: chromium and
## chromium-driver from Debian, a Chinese font (fonts-wqy-microhei, so the console's zh screenshots show
## characters rather than boxes), selenium from PyPI in $(BROWSER_VENV) with cryptography (the console check's
## second device is tools/attack_client.py's).
browser-deps:
	@missing=$$(command -v chromium >/dev/null || echo chromium; command -v chromedriver >/dev/null || echo chromium-driver; \
	  [ -n "$$(fc-list :lang=zh 2>/dev/null)" ] || echo fonts-wqy-microhei); missing=$$(echo $$missing); \
	if [ -n "$$missing" ]; then \
	  echo "Installing $$missing (the load reports and the console are checked in a real browser)..."; \
	  if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	    echo "$$missing missing and this user cannot install them. Run as root:"; \
	    echo "    apt-get update && apt-get install -y --no-install-recommends $$missing"; exit 1; \
	  fi; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing \
	    || { echo "Could not install them. Run: sudo apt-get install -y --no-install-recommends $$missing"; exit 1; }; \
	fi
	@if ! $(BROWSER_VENV)/bin/python -c 'import selenium, cryptography' 2>/dev/null; then \
	  echo "Installing selenium and cryptography into $(BROWSER_VENV)..."; \
	  python3 -m venv $(BROWSER_VENV) && $(BROWSER_VENV)/bin/pip install --quiet 'selenium>=4.11,<5' cryptography \
	    || { echo "Could not make $(BROWSER_VENV) with selenium: is python3-venv installed (apt-get install python3-venv)?"; exit 1; }; \
	fi

## The DC-09 peers no one here wrote, from PyPI in $(DC09_VENV): pysiaalarm (Home Assistant's DC-09 receiver
## library) and dc09-spt (a DC-09 dialler). dc09-spt asks for pycrypto, which no longer builds on current
## Python; it gets pycryptodome, its successor (tools/check_dc09_peers.py bridges the one difference).
dc09-deps:
	@if ! $(DC09_VENV)/bin/python -c 'import pysiaalarm, dc09_spt, Crypto' 2>/dev/null; then \
	  echo "Installing pysiaalarm and dc09-spt into $(DC09_VENV)..."; \
	  python3 -m venv $(DC09_VENV) && $(DC09_VENV)/bin/pip install --quiet 'pysiaalarm>=3.1,<4' 'pycryptodome>=3.10' \
	    && $(DC09_VENV)/bin/pip install --quiet --no-deps 'dc09-spt==0.0.4' \
	    || { echo "Could not make $(DC09_VENV): is python3-venv installed (apt-get install python3-venv)?"; exit 1; }; \
	fi

## The SIP peers from Debian's packages, installed when missing: SIPp (sip-tester) and tshark; Kamailio (5.6, the
## registrar and proxy), baresip (1.0, baresip-core: the operator's softphone without its GTK front end) and sox
## (the audio compared). Installing kamailio may start Debian's own Kamailio service on port 5060: the check
## runs its own on a free loopback port.
SIP_PACKAGES := sip-tester tshark kamailio baresip-core sox
sip-deps:
	@missing=$$(for p in $(SIP_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing $$missing (our SIP user agent is checked against SIPp, Kamailio and baresip, its RTP read by tshark, the audio by sox)..."; \
	  if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	    echo "$$missing missing and this user cannot install them. Run as root:"; \
	    echo "    apt-get update && apt-get install -y --no-install-recommends $$missing"; exit 1; \
	  fi; \
	  $(SUDO) apt-get update -qq && echo "wireshark-common wireshark-common/install-setuid boolean false" | $(SUDO) debconf-set-selections \
	    && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing \
	    || { echo "Could not install them. Run: sudo apt-get install -y --no-install-recommends $$missing"; exit 1; }; \
	fi

## Our SIP user agent (`devicesim sip call|answer`) against SIPp over UDP and TCP, with tshark reading the RTP
## (tools/check_sip_peers.py).
sip-test: deps sip-deps
	$(SWIFT) build --product devicesim
	$(call stamp,.build/debug/devicesim)
	python3 tools/check_sip_peers.py .build/debug/devicesim

## The centre's operator bridge with baresip (the operator, auto-answering and playing a known file) registered
## to Kamailio (registrar and proxy, digest authentication), the centre registered and calling through it; what
## the home heard compared with the file by sox (tools/check_sip_kamailio.py).
sip-kamailio-test: deps sip-deps
	$(SWIFT) build --product devicesim
	$(call stamp,.build/debug/devicesim)
	python3 tools/check_sip_kamailio.py .build/debug/devicesim

## Our DC-09 frames against pysiaalarm and dc09-spt, and dc09-spt reporting into our centre's DC-09 port
## (tools/check_dc09_peers.py), and `devicesim load --protocol dc09` against a pysiaalarm receiver over TCP and
## UDP, clear and encrypted (tools/check_dc09_load.py).
dc09-test: deps dc09-deps
	$(SWIFT) build --product devicesim
	$(DC09_VENV)/bin/python tools/check_dc09_peers.py .build/debug/devicesim
	$(DC09_VENV)/bin/python tools/check_dc09_load.py .build/debug/devicesim

## The centre as a DC-09 gateway (--forward) against pysiaalarm as the ARC, stopped and restarted mid-run
## (tools/check_dc09_gateway.py; with BENCH=N, the queue's drain rate instead).
dc09-gateway-test: deps dc09-deps
	$(SWIFT) build --product devicesim
	$(DC09_VENV)/bin/python tools/check_dc09_gateway.py .build/debug/devicesim $(if $(BENCH),--bench $(BENCH))

## The load tester's HTML pages (a run, a failed run, a comparison) in headless Chromium without a network:
## banner, plots and tables are there once the page has rendered (tools/check_report_html.py).
browser-test: deps browser-deps
	$(SWIFT) build --product devicesim
	$(call stamp,.build/debug/devicesim)
	$(BROWSER_VENV)/bin/python tools/check_report_html.py .build/debug/devicesim

## The operators' web console in headless Chromium against a real centre (`--web-port`) with a real device whose
## button is pressed through a pseudo-terminal; screenshots in .build/console-screenshots (tools/check_console.py).
console-test: deps browser-deps
	$(SWIFT) build --product devicesim
	$(call stamp,.build/debug/devicesim)
	$(BROWSER_VENV)/bin/python tools/check_console.py .build/debug/devicesim

## The main job, on the embedded defaults: no configuration needed.
demo: deps
	$(SWIFT) build -c release --product devicesim
	$(call stamp,.build/release/devicesim)
	.build/release/devicesim demo

## Every test: the independent check of protocol.md's vectors, the documentation's links, the main job as
## `make demo` runs it (a release build: Swift 6.3's optimizer once crashed on code the debug build took), the
## VM test, the attack client against real centres, the load reports and the operators' console in Chromium, our
## DC-09 frames against pysiaalarm and dc09-spt, DC-09 load runs against pysiaalarm, the centre forwarding to pysiaalarm, our SIP
## user agent against SIPp (RTP read by tshark), the operator bridge with baresip registered to Kamailio (the
## audio compared by sox), the deployment files (deploy/) against the binary, then the Swift test suites (among
## them the journal on PostgreSQL: a throwaway cluster, tools/pg_cluster.sh): under a watchdog that, should a test
## hang, names it and stops the run after 20 minutes (the suites take about 1.5).
test: deps pg-deps vm-deps browser-deps dc09-deps sip-deps vectors links demo
	$(SWIFT) build --build-tests
	$(call stamp,.build/debug/devicesim)
	tools/vm/run.sh .build/debug/devicesim
	python3 tools/attack_client.py --devicesim "$$($(SWIFT) build --show-bin-path)/devicesim"
	$(BROWSER_VENV)/bin/python tools/check_report_html.py .build/debug/devicesim
	$(BROWSER_VENV)/bin/python tools/check_console.py .build/debug/devicesim
	$(DC09_VENV)/bin/python tools/check_dc09_peers.py .build/debug/devicesim
	$(DC09_VENV)/bin/python tools/check_dc09_load.py .build/debug/devicesim
	$(DC09_VENV)/bin/python tools/check_dc09_gateway.py .build/debug/devicesim
	python3 tools/check_sip_peers.py .build/debug/devicesim
	python3 tools/check_sip_kamailio.py .build/debug/devicesim
	python3 tools/check_deploy.py .build/debug/devicesim
	$(SUDO) python3 tools/check_failover.py .build/debug/devicesim
	python3 tools/test_watchdog.py --limit 1200 -- $(SWIFT) test

## The centre's deployment files (deploy/: the systemd unit, the Kubernetes manifests) against the binary built
## already, building nothing itself: systemd-analyze verify, each `devicesim center` command line run (exit 69 at
## the unreachable journal, never 64), the probes and ports against its flags, and with PostgreSQL's server
## installed each command line against a throwaway one (tools/check_deploy.py).
deploy-check: deps
	python3 tools/check_deploy.py .build/debug/devicesim

## Failover (issue 18): two centre nodes in network namespaces of their own (made and removed by the check, as
## root: `ip netns`, veth pairs; iproute2 installed when missing) on one throwaway PostgreSQL, two fleets using
## both, node a killed with SIGKILL in the storm (tools/check_failover.py; DEVICES=, RATE=, DURATION=,
## TRANSPORT= for a bigger run).
failover-test: deps pg-deps
	$(SWIFT) build --product devicesim
	$(call stamp,.build/debug/devicesim)
	$(SUDO) python3 tools/check_failover.py .build/debug/devicesim $(if $(DEVICES),--devices $(DEVICES)) $(if $(RATE),--rate $(RATE)) $(if $(DURATION),--duration $(DURATION)) $(if $(TRANSPORT),--transport $(TRANSPORT))

## devicesim against a real kernel's input subsystem: Debian's kernel under qemu, a uinput button (tools/vm/).
vm-test: deps vm-deps
	$(SWIFT) build --product devicesim
	$(call stamp,.build/debug/devicesim)
	tools/vm/run.sh .build/debug/devicesim

## The attacker's client of tools/attack_client.py (written from protocol.md) against real centres.
attack: deps python-deps
	$(SWIFT) build --product devicesim
	python3 tools/attack_client.py --devicesim "$$($(SWIFT) build --show-bin-path)/devicesim"

## protocol.md's vectors recomputed by an independent implementation (Python, OpenSSL through `cryptography`).
vectors: python-deps
	python3 tools/verify_vectors.py

## Every link in the Markdown files resolves (files, anchors) and none leaves the repository (tools/check_links.py,
## which first checks itself on a tree of good and broken links).
links:
	python3 tools/check_links.py --self-test
	python3 tools/check_links.py

## `cryptography` (OpenSSL) for the Python tools written from protocol.md, installed from PyPI when missing.
python-deps:
	@python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install --quiet cryptography

## The hot paths' benchmarks (docs/benchmarks.md, "Benchmarks as code"): the Benchmarks package's workloads
## under ordo-one/benchmark (time and mallocs per step), then their instructions per step under callgrind (the
## figures to compare across commits; BENCH_SAVE=FILE keeps them, BENCH_COMPARE=FILE prints ratios), then the
## codec's throughput on one core (`devicesim protocol bench`). Installs valgrind when missing.
bench: deps
	@command -v valgrind >/dev/null || { echo "Installing valgrind (instruction counts)..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark --no-progress
	$(SWIFT) build -c release --package-path Benchmarks --product instructions
	tools/bench_instructions.py $(if $(BENCH_SAVE),--save $(BENCH_SAVE)) $(if $(BENCH_COMPARE),--compare $(BENCH_COMPARE))
	$(SWIFT) build -c release --product devicesim
	$(call stamp,.build/release/devicesim)
	.build/release/devicesim protocol bench

## The device's binary, as hardware/README.md installs it: release, with the Swift runtime inside, each function
## in a section of its own and the ones the idle device runs linked first (hardware/device-hot-symbols.txt, lld's
## --symbol-ordering-file), so that they share a few pages: .build/release/devicesim.
DEVICE_BUILD := -c release --static-swift-stdlib --product devicesim \
  -Xswiftc -Xfrontend -Xswiftc -function-sections -Xswiftc -Xfrontend -Xswiftc -disable-incremental-llvm-codegen \
  -Xcc -ffunction-sections -Xswiftc -use-ld=lld \
  -Xlinker --symbol-ordering-file=$(CURDIR)/hardware/device-hot-symbols.txt -Xlinker --no-warn-symbol-ordering
device-binary: deps
	$(SWIFT) build $(DEVICE_BUILD)
	$(call stamp,.build/release/devicesim)

## Records hardware/device-hot-symbols.txt again from the device's binary idling under valgrind
## (tools/hot_symbols.py). Installs valgrind when missing.
hot-symbols: device-binary
	@command -v valgrind >/dev/null || { echo "Installing valgrind (callgrind)..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
	tools/hot_symbols.py --binary .build/release/devicesim

## libFuzzer on the frame decoder, SECONDS (default 60).
fuzz: deps
	fuzz/run.sh $(or $(SECONDS),60)

clean:
	rm -rf .build .build-*
