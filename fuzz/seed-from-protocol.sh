#!/bin/sh
# Rewrites the frame-* and body-* seeds of fuzz/corpus from the ```vector blocks of protocol.md §7, and the two
# stream-* seeds from those frames. Run it after the vectors are regenerated, so the seed frames keep
# authenticating under the fuzzer's test key (the vectors' key). The other body-* seeds are hand-written.
set -eu
cd "$(dirname "$0")/.."
out=fuzz/corpus
awk '
    /^```vector/ { inside = 1; name = ""; next }
    /^```/       { inside = 0; next }
    inside && $1 == "name:"  { sub(/^name:[ ]*/, ""); gsub(/ /, "-"); name = $0 }
    inside && ($1 == "frame:" || $1 == "body:") {
        kind = substr($1, 1, length($1) - 1); sub(/^[a-z]+:[ ]*/, ""); print kind "-" name "\t" $0
    }
' protocol.md | while IFS="$(printf '\t')" read -r file hex; do
    printf '%s' "$hex" | xxd -r -p > "$out/$file"
done
cat "$out/frame-heartbeat" "$out/frame-alarm" "$out/frame-ack" > "$out/stream-heartbeat-alarm-ack"
{ cat "$out/frame-sessionStart"; head -c 20 "$out/frame-heartbeat"; } > "$out/stream-sessionStart-truncated"
echo "seeds written to $out: $(ls "$out" | wc -l) files"
