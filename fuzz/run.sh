#!/bin/sh
# libFuzzer on the DeviceKit wire decoder (Sources/DecoderFuzzer), for SECONDS (default 60).
#
#   fuzz/run.sh [SECONDS]
#
# Builds DecoderFuzzer with libFuzzer and AddressSanitizer into .build-fuzz, then fuzzes a working copy of the
# seed corpus in fuzz/work/corpus (kept between runs, so coverage accumulates; fuzz/corpus is never written).
# A crash input lands in fuzz/work/crash-*; replay it with a normal build:
#   swift build --scratch-path .build-fuzz --product DecoderFuzzer && .build-fuzz/debug/DecoderFuzzer -v fuzz/work/crash-*
set -eu
cd "$(dirname "$0")/.."
seconds="${1:-60}"
mkdir -p fuzz/work/corpus
cp -n fuzz/corpus/* fuzz/work/corpus/ 2>/dev/null || true
# SWIFT_BACKTRACE=enable=no: Swift's backtracer must not take libFuzzer's crash signals (it can hang there).
swift build -c release --scratch-path .build-fuzz --product DecoderFuzzer -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING && SWIFT_BACKTRACE=enable=no .build-fuzz/release/DecoderFuzzer fuzz/work/corpus -max_total_time="$seconds" -artifact_prefix=fuzz/work/ -print_final_stats=1
