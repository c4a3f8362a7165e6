#!/bin/sh
# Shows that standard tools read the voice link as what it is: records one `devicesim demo` call on the
# loopback interface and lets tshark find and measure its RTP streams (SSRC, payload type, packets, loss,
# jitter). The payloads are SRTP-encrypted; the RTP headers tshark reads are in clear by design (protocol.md §4.8).
#
#   tools/rtp_capture.sh [capture.pcap]       # needs tshark (apt-get install -y tshark) and capture rights
#
# The media ports are chosen by the system, so the streams are found by tshark's RTP heuristic; to decode
# one port explicitly, as for any RTP capture:  tshark -r capture.pcap -d udp.port==N,rtp -q -z rtp,streams
set -eu
cd "$(dirname "$0")/.."
command -v tshark >/dev/null || { echo "tshark is missing: run  apt-get install -y tshark"; exit 1; }
pcap=${1:-/tmp/devicekit-call.pcap}
swift build --product devicesim >/dev/null
tshark -q -i lo -f udp -w "$pcap" 2>/dev/null &
capture=$!
sleep 2
.build/debug/devicesim demo
sleep 1
kill "$capture"
wait "$capture" 2>/dev/null || true
echo
echo "RTP streams in $pcap, as tshark measures them:"
tshark -r "$pcap" -o rtp.heuristic_rtp:TRUE -q -z rtp,streams
# The same, decoding the first voice stream's destination port explicitly, as one would for any RTP capture.
port=$(tshark -r "$pcap" -o rtp.heuristic_rtp:TRUE -Y "rtp.p_type == 0" -T fields -e udp.dstport -c 1 2>/dev/null)
if [ -n "$port" ]; then
  echo
  echo "Decoded as RTP by port (udp.port==$port): length on the wire, SSRC, PT (0 voice, 96 video), seq, timestamp, marker"
  tshark -r "$pcap" -d "udp.port==$port,rtp" -Y "rtp && udp.dstport == $port" -c 5 \
    -T fields -e frame.len -e rtp.ssrc -e rtp.p_type -e rtp.seq -e rtp.timestamp -e rtp.marker 2>/dev/null
fi
