#!/bin/busybox sh
# /init of the VM test's initramfs (tools/vm/run.sh builds it and reads what this prints).
#
# Runs devicesim against the real kernel's evdev and uinput: a virtual call button (vbutton, a uinput
# device) is pressed, unplugged and flooded while devicesim's own commands read it. Every check prints one
# line `VMTEST <check> PASS|FAIL <what was seen>`, the last line is `VMTEST verdict PASS|FAIL`, and then the
# VM powers off. Times are CLOCK_MONOTONIC (vbutton's, the kernel's evdev timestamps, and `vbutton stamp` on
# devicesim's log lines), all inside the VM.

/bin/busybox mkdir -p /proc /sys /dev /tmp /run
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/local/bin HOME=/root
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
echo "VMTEST boot init-started guest-uptime=$(cut -d' ' -f1 /proc/uptime)s kernel=$(uname -r)"
# Kernel messages would cut into the result lines; they are printed after the verdict instead.
echo 1 >/proc/sys/kernel/printk

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "VMTEST $1 PASS $2"; }
fail() { FAILED=$((FAILED + 1)); echo "VMTEST $1 FAIL $2"; }
info() { echo "VMTEST info $*"; }

finish() {
    verdict=PASS
    [ "$FAILED" -eq 0 ] || verdict=FAIL
    echo "VMTEST verdict $verdict passed=$PASSED failed=$FAILED"
    for name in list ident vbutton watch record watchdrop watchgrab grab2 watchnograb centre run; do
        [ -f /tmp/$name.out ] || continue
        echo "----- /tmp/$name.out"
        cat /tmp/$name.out
    done
    echo "----- dmesg"
    dmesg | tail -n 60
    sync
    poweroff -f
}

# --- helpers ---------------------------------------------------------------------------------------

# wait_for FILE PATTERN [SECONDS] [FROM_LINE]: until a line after FROM_LINE of FILE matches the extended
# regular expression PATTERN; prints that line. Fails after SECONDS (default 60).
wait_for() {
    _file=$1 _pattern=$2 _deadline=$(( $(centiseconds) + ${3:-60} * 100 )) _from=$(( ${4:-0} + 1 ))
    while :; do
        if [ -f "$_file" ] && tail -n +"$_from" "$_file" | grep -m1 -E -- "$_pattern"; then return 0; fi
        [ "$(centiseconds)" -lt "$_deadline" ] || return 1
        usleep 50000
    done
}

# The time since boot in hundredths of a second.
centiseconds() {
    read -r _uptime _ </proc/uptime
    echo $(( ${_uptime%.*} * 100 + 1${_uptime#*.} - 100 ))
}

lines() { wc -l <"$1" | tr -d ' '; }

# vb COMMAND [ARGUMENT]: runs a vbutton command; VB is its answer line.
SEQ=0
vb() {
    SEQ=$((SEQ + 1))
    echo "$SEQ $*" >/tmp/vbutton.fifo
    VB=$(wait_for /tmp/vbutton.out "^vbutton $SEQ " 30) || { VB="vbutton $SEQ $1 error no answer"; return 1; }
    case "$VB" in *" ok"*) return 0 ;; *) return 1 ;; esac
}

# field NAME [INDEX]: the INDEX-th (1 or 2) comma-separated value of NAME= in VB.
field() { echo "$VB" | sed -n "s/.* $1=\([^ ]*\).*/\1/p" | cut -d, -f"${2:-1}"; }

# press_bounds: "LOW HIGH", the shortest and longest duration in ms the kernel can have timestamped for
# the last `vb press` (the key's events were written between the two times vbutton took around each write).
press_bounds() {
    awk -v d0="$(field down 1)" -v d1="$(field down 2)" -v u0="$(field up 1)" -v u1="$(field up 2)" \
        'BEGIN { printf "%d %d\n", int((u0 - d1) * 1000) - 1, int((u1 - d0) * 1000) + 1 }'
}

# within VALUE "LOW HIGH"
within() { set -- "$1" $2; [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

# start NAME [--stamped] COMMAND...: runs COMMAND in the background, its output in /tmp/NAME.out (each line
# prefixed with its CLOCK_MONOTONIC arrival time with --stamped); its pid in PID_NAME.
start() {
    _name=$1
    shift
    if [ "$1" = "--stamped" ]; then
        shift
        rm -f /tmp/$_name.pipe
        mkfifo /tmp/$_name.pipe
        vbutton stamp </tmp/$_name.pipe >/tmp/$_name.out &
        "$@" >/tmp/$_name.pipe 2>&1 &
    else
        "$@" >/tmp/$_name.out 2>&1 &
    fi
    eval "PID_$_name=$!"
}

# stop NAME SIGNAL: sends SIGNAL, waits up to 30 s for the process to end (then SIGKILL); STATUS is its exit
# status.
stop() {
    eval "_pid=\$PID_$1"
    [ -n "$_pid" ] || { STATUS=255; return; }
    kill -"$2" "$_pid" 2>/dev/null
    _limit=600
    while [ "$_limit" -gt 0 ] && [ -e /proc/$_pid ] && [ "$(cut -d' ' -f3 /proc/$_pid/stat 2>/dev/null)" != Z ]; do
        usleep 50000
        _limit=$((_limit - 1))
    done
    [ "$_limit" -gt 0 ] || { info "$1 ignored SIG$2 for 30 s; killed"; kill -9 "$_pid" 2>/dev/null; }
    wait "$_pid"
    STATUS=$?
    eval "PID_$1="
}

quote() { tr '\t' ' ' | sed 's/  */ /g' | head -c 300 | tr '\n' '|'; }

# --- set-up ----------------------------------------------------------------------------------------

for module in $(cat /lib/modules/order); do
    insmod /lib/modules/$module || { fail boot "insmod $module failed"; finish; }
done
mkdir -p /dev/input
ip link set lo up
mkfifo /tmp/vbutton.fifo
# Held open here too, so that a command to a vbutton that died fails by its timeout instead of blocking.
exec 3<>/tmp/vbutton.fifo
vbutton serve /tmp/vbutton.fifo >/tmp/vbutton.out 2>&1 &
VB=$(wait_for /tmp/vbutton.out "^vbutton 0 " 10)
case "$VB" in
    *" ok"*) NODE=$(field node); info "uinput button created: $NODE, linked from /dev/input/sos-button" ;;
    *) fail boot "vbutton could not create the uinput device: $VB"; finish ;;
esac
BUTTON=/dev/input/sos-button
KEY=KEY_PROG1
T0=$(cut -d' ' -f1 /proc/uptime)
devicesim --help >/dev/null 2>&1 || { fail boot "devicesim does not start: $(devicesim --help 2>&1 | quote)"; finish; }
info "devicesim --help took $(awk -v a="$T0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.2f", b - a }') s"

# --- 1. identity: diag list (sysfs) and what diag watch reads with EVIOCGNAME, EVIOCGID, EVIOCGBIT -----

check_identity() {
    devicesim diag list >/tmp/list.out 2>&1
    status=$?
    # The paragraph of the button: its node, then name, bus, vendor and product, keys, permissions.
    block=$(awk -v RS= '/DeviceKit VM call button/' /tmp/list.out)
    missing=""
    [ -n "$block" ] || missing="$missing the button at all;"
    echo "$block" | grep -q 'name: "DeviceKit VM call button", bus usb, vendor 1d6b, product 0104' \
        || missing="$missing name, bus usb, vendor 1d6b, product 0104;"
    echo "$block" | grep -q "keys: $KEY\$" || missing="$missing keys: $KEY;"
    echo "$block" | grep -q "$NODE" || missing="$missing node $NODE;"
    # The same identity through the ioctls: diag watch prints it once the device is open.
    timeout 60 devicesim diag watch "$BUTTON" --seconds 1 >/tmp/ident.out 2>&1
    grep -qx "$BUTTON: \"DeviceKit VM call button\", usb 1d6b:0104" /tmp/ident.out \
        || missing="$missing diag watch's name and usb 1d6b:0104 (EVIOCGNAME, EVIOCGID);"
    grep -qx "  keys: $KEY" /tmp/ident.out || missing="$missing diag watch's keys: $KEY (EVIOCGBIT);"
    if [ -n "$missing" ]; then
        fail identity "missing:$missing diag list (exit $status): $(quote </tmp/list.out) diag watch: $(quote </tmp/ident.out)"
        return
    fi
    pass identity "diag list (sysfs): $(echo "$block" | quote) diag watch (ioctls): $(head -n 2 /tmp/ident.out | quote)"
}

# --- 2, 3. diag watch: a key held at start (EVIOCGKEY), presses, autorepeat, bounce ----------------

check_watch() {
    vb down || { fail watch-held "vbutton: $VB"; fail watch-presses "not run"; return; }
    start watch devicesim diag watch "$BUTTON" --seconds 300
    if ! wait_for /tmp/watch.out "Watching|PROBLEM" 90 >/dev/null || ! grep -q Watching /tmp/watch.out; then
        fail watch-held "diag watch did not start: $(quote </tmp/watch.out)"
        fail watch-presses "diag watch did not start"
        stop watch KILL
        vb up
        return
    fi
    if held=$(grep "already held down when watching started" /tmp/watch.out); then
        pass watch-held "key down before diag watch started; it said: $(echo "$held" | quote)"
    else
        fail watch-held "key down before diag watch started, but it did not say so: $(quote </tmp/watch.out)"
    fi
    vb up
    wait_for /tmp/watch.out "$KEY released" 30 >/dev/null

    problems=""
    seen=""
    bounces=""
    for ms in 150 40 600 10; do
        mark=$(lines /tmp/watch.out)
        vb press $ms || { problems="$problems vbutton: $VB;"; continue; }
        bounds=$(press_bounds)
        if ! line=$(wait_for /tmp/watch.out "$KEY released after" 30 "$mark"); then
            problems="$problems no release seen for the ${ms} ms press;"
            continue
        fi
        got=$(echo "$line" | sed 's/.*released after \([0-9]*\) ms.*/\1/')
        seen="$seen ${ms}->${got}(kernel ${bounds% *}..${bounds#* })"
        within "$got" "$bounds" || problems="$problems the ${ms} ms press was reported as $got ms, outside ${bounds% *}..${bounds#* } ms;"
        # A press released within the debounce window (30 ms) is reported beside its release as a glitch,
        # the firmware's word for a press too brief to count; a loaded emulator may stretch the 10 ms press
        # past the window, and then it is none.
        around=$(grep -B1 -A1 -F "$line" /tmp/watch.out)
        case "$around" in *"$KEY glitch"*) bounced=yes ;; *) bounced=no ;; esac
        if [ "$got" -lt 30 ] 2>/dev/null; then
            [ $bounced = yes ] && bounces="$bounces ${got}ms" || problems="$problems the $got ms press was not reported as a glitch;"
        elif [ $bounced = yes ]; then
            problems="$problems the $got ms press was reported as a glitch;"
        fi
    done
    stop watch INT
    grep -q "$KEY held long enough for autorepeat" /tmp/watch.out || problems="$problems no autorepeat reported for the 600 ms press;"
    grep -q "^Summary:" /tmp/watch.out || problems="$problems no summary after SIGINT (exit $STATUS);"
    summary=$(sed -n '/^Summary:/,$p' /tmp/watch.out | quote)
    if [ -n "$problems" ]; then
        fail watch-presses "$problems seen:$seen; output: $(quote </tmp/watch.out)"
    else
        pass watch-presses "held ms:$seen; autorepeat reported; glitches:${bounces:- none (no press under 30 ms)}; $summary"
    fi
}

# --- 4. diag record: an evemu recording of two presses ----------------------------------------------

check_record() {
    rm -f /tmp/press.evemu
    start record devicesim diag record "$BUTTON" --out /tmp/press.evemu --seconds 300
    if ! wait_for /tmp/record.out "Recording to|PROBLEM" 90 >/dev/null || ! grep -q "Recording to" /tmp/record.out; then
        stop record KILL
        fail record "diag record did not start (exit $STATUS): $(quote </tmp/record.out)"
        return
    fi
    vb press 150 && b150=$(press_bounds)
    vb press 40 && b40=$(press_bounds)
    stop record INT
    problems=""
    [ "$STATUS" -eq 0 ] || problems="$problems exit status $STATUS;"
    wrote=$(grep "^Wrote" /tmp/record.out)
    [ -n "$wrote" ] || problems="$problems no 'Wrote N events' line;"
    f=/tmp/press.evemu
    grep -q "^# EVEMU 1.3" $f || problems="$problems no '# EVEMU 1.3' header;"
    grep -q "^N: DeviceKit VM call button$" $f || problems="$problems no 'N: DeviceKit VM call button';"
    grep -q "^I: 0003 1d6b 0104 0111$" $f || problems="$problems no 'I: 0003 1d6b 0104 0111';"
    # KEY_PROG1 = 148: byte 18 of the EV_KEY bitmap, bit 4; the third "B: 01" line holds bytes 16 to 23.
    [ "$(grep '^B: 01 ' $f | sed -n 3p)" = "B: 01 00 00 10 00 00 00 00 00" ] || problems="$problems the EV_KEY bitmap lacks KEY_PROG1;"
    # MSC_SCAN = 4: bit 4 of the EV_MSC bitmap's first byte.
    [ "$(grep '^B: 04 ' $f | sed -n 1p)" = "B: 04 10 00 00 00 00 00 00 00" ] || problems="$problems the EV_MSC bitmap lacks MSC_SCAN;"
    # Press durations from the E: lines' timestamps.
    durations=$(grep -E "^E: [0-9.]+ 0001 0094 000[01]" $f | awk '
        $5 == "0001" { down = $2 } $5 == "0000" && down != "" { printf "%d ", ($2 - down) * 1000; down = "" }')
    set -- $durations
    if [ $# -ne 2 ]; then
        problems="$problems expected 2 presses of KEY_PROG1 in the E: lines, found $#;"
    else
        within "$1" "$b150" || problems="$problems the 150 ms press lasted $1 ms in the file, outside $b150;"
        within "$2" "$b40" || problems="$problems the 40 ms press lasted $2 ms in the file, outside $b40;"
    fi
    syn=$(grep -c "^E: [0-9.]* 0000 0000 0000" $f)
    [ "$syn" -ge 4 ] || problems="$problems only $syn SYN_REPORT lines;"
    if [ -n "$problems" ]; then
        fail record "$problems output: $(quote </tmp/record.out); file: $(head -c 2000 $f | quote)"
    else
        pass record "$wrote; header N:/I:/B: right; presses of $* ms (kernel bounds $b150 and $b40); $syn SYN_REPORTs"
    fi
    # The technician's verdict on that recording, offline: the 150 ms press is an alarm, the 40 ms one too
    # short for the default hold_ms = 100, judged from the recorded times.
    if devicesim diag analyze $f >/tmp/analyze.out 2>&1; then
        if [ "$(grep -c 'held for alarm.hold_ms = 100 ms: an alarm' /tmp/analyze.out)" = 1 ] \
            && [ "$(grep -c 'shorter than alarm.hold_ms = 100 ms: no alarm' /tmp/analyze.out)" = 1 ]; then
            pass analyze "diag analyze: $(quote </tmp/analyze.out)"
        else
            fail analyze "diag analyze did not judge the 150 ms press an alarm and the 40 ms one too short: $(quote </tmp/analyze.out)"
        fi
    else
        fail analyze "diag analyze exited $?: $(quote </tmp/analyze.out)"
    fi
}

# --- 5. SYN_DROPPED: diag watch stopped while the kernel's buffer overflows -------------------------

check_syn_dropped() {
    start watchdrop devicesim diag watch "$BUTTON" --seconds 300
    if ! wait_for /tmp/watchdrop.out "Watching|PROBLEM" 90 >/dev/null || ! grep -q Watching /tmp/watchdrop.out; then
        stop watchdrop KILL
        fail syn-dropped "diag watch did not start: $(quote </tmp/watchdrop.out)"
        return
    fi
    kill -STOP "$PID_watchdrop"
    vb flood 1000
    flood=$VB
    kill -CONT "$PID_watchdrop"
    problems=""
    drop=$(wait_for /tmp/watchdrop.out "SYN_DROPPED" 30) || problems="$problems no SYN_DROPPED reported;"
    # The key went down before the events the kernel dropped: only EVIOCGKEY after the drop can tell.
    resync=$(wait_for /tmp/watchdrop.out "$KEY (is )?(held )?down" 30) || problems="$problems the key went down among the dropped events, but diag watch never said it is down (it did not read the key state again);"
    vb up
    release=$(wait_for /tmp/watchdrop.out "$KEY released" 30) || problems="$problems no release after the flood;"
    stop watchdrop INT
    if [ -n "$problems" ]; then
        fail syn-dropped "$problems vbutton: $flood; output: $(quote </tmp/watchdrop.out)"
    else
        pass syn-dropped "$(echo "$flood" | sed 's/.*events=\([0-9]*\).*/\1/') events written while diag watch was stopped; it said: $(echo "$drop" | quote) then $(echo "$resync" | quote) then $(echo "$release" | quote)"
    fi
}

# --- 6-10. devicesim run with the evdev backend, a centre on loopback --------------------------------

start_centre_and_device() {
    rm -rf /tmp/state /tmp/device.toml /tmp/registry.toml /tmp/center.sqlite
    devicesim provision --id 1001 --center 127.0.0.1:7700 --registry /tmp/registry.toml --state-dir /tmp/state \
        --out /tmp/device.toml >/tmp/provision.out 2>&1 || { info "provision failed: $(quote </tmp/provision.out)"; return 1; }
    # The provisioned file with the evdev button in place of the simulated one.
    awk '/^\[/ { skip = ($0 == "[button]" || $0 == "[alarm]" || $0 == "[log]") } !skip' /tmp/device.toml >/tmp/device.new
    cat >>/tmp/device.new <<EOF

[alarm]
hold_ms = 200
debounce_ms = 30

[button]
backend = "evdev"
device = "$BUTTON"
key = "$KEY"
grab = true

[log]
level = "debug"
EOF
    mv /tmp/device.new /tmp/device.toml
    start centre --stamped devicesim center --port 7700 --host 127.0.0.1 --keys /tmp/registry.toml \
        --journal /tmp/center.sqlite --json
    wait_for /tmp/centre.out '"event":"listening"' 90 >/dev/null || { info "the centre did not start: $(quote </tmp/centre.out)"; return 1; }
    start run --stamped devicesim run --config /tmp/device.toml
    return 0
}

run_lines() { lines /tmp/run.out; }

check_run() {
    # grab-elsewhere: diag watch --grab holds the button when the device starts.
    start watchgrab devicesim diag watch "$BUTTON" --grab --seconds 300
    wait_for /tmp/watchgrab.out "Watching|PROBLEM" 90 >/dev/null
    if ! start_centre_and_device; then
        for check in grab-elsewhere grab-refused grab-exclusive hotplug alarm run-resync; do
            fail $check "the centre or the device did not start"
        done
        stop watchgrab KILL
        return
    fi
    if missing=$(wait_for /tmp/run.out "call button missing" 90); then
        mark=$(run_lines)
        stop watchgrab INT
        if present=$(wait_for /tmp/run.out "call button present" 30 "$mark"); then
            pass grab-elsewhere "with diag watch --grab holding it, the device said: $(echo "$missing" | quote) and once it let go: $(echo "$present" | quote)"
        else
            fail grab-elsewhere "the device said $(echo "$missing" | quote) but not 'present' after diag watch let go"
        fi
    else
        stop watchgrab INT
        fail grab-elsewhere "the device did not report the button missing while diag watch --grab held it: $(tail -n 20 /tmp/run.out | quote)"
    fi
    wait_for /tmp/run.out "call button present" 30 >/dev/null
    wait_for /tmp/run.out "session established" 90 >/dev/null || info "no session established yet: $(tail -n 5 /tmp/run.out | quote)"

    # grab-refused: a second grab while the device holds its own.
    timeout 60 devicesim diag watch "$BUTTON" --grab --seconds 10 >/tmp/grab2.out 2>&1
    status=$?
    if [ "$status" -ne 0 ] && grep -q "another program has grabbed" /tmp/grab2.out; then
        pass grab-refused "diag watch --grab exited $status: $(grep -E 'PROBLEM|grabbed' /tmp/grab2.out | quote)"
    else
        fail grab-refused "diag watch --grab while the device holds the grab exited $status: $(quote </tmp/grab2.out)"
    fi

    # grab-exclusive: a reader without a grab sees nothing of a press the device sees.
    start watchnograb devicesim diag watch "$BUTTON" --seconds 300
    wait_for /tmp/watchnograb.out "Watching|PROBLEM" 90 >/dev/null
    mark=$(run_lines)
    vb press 40
    devdown=$(wait_for /tmp/run.out "down=true" 30 "$mark")
    devup=$(wait_for /tmp/run.out "down=false" 30 "$mark")
    stop watchnograb INT
    if [ -n "$devdown" ] && [ -n "$devup" ] && grep -q Watching /tmp/watchnograb.out && ! grep -q "$KEY pressed" /tmp/watchnograb.out \
        && grep -q "no press was seen" /tmp/watchnograb.out; then
        pass grab-exclusive "the device (grab = true) saw the 40 ms press, diag watch without a grab saw nothing: $(sed -n '/^Summary:/,$p' /tmp/watchnograb.out | quote)"
    else
        fail grab-exclusive "device: ${devdown:-no down}, ${devup:-no up}; diag watch: $(quote </tmp/watchnograb.out)"
    fi

    # hotplug: the button unplugged and plugged in again, reported to the centre too.
    mark=$(run_lines)
    cmark=$(lines /tmp/centre.out)
    vb destroy
    if missing=$(wait_for /tmp/run.out "call button missing" 30 "$mark"); then
        mark=$(run_lines)
        vb create
        info "button re-created: $(field node)"
        if ! present=$(wait_for /tmp/run.out "call button present" 30 "$mark"); then
            fail hotplug "said $(echo "$missing" | quote) but never present again: $(tail -n 10 /tmp/run.out | quote)"
        elif ! restored=$(wait_for /tmp/centre.out '"kind":"buttonRestored"' 30 "$cmark") \
            || ! tail -n +"$((cmark + 1))" /tmp/centre.out | grep -q '"kind":"buttonMissing"'; then
            fail hotplug "the device said $(echo "$missing" | quote) and $(echo "$present" | quote) but the centre did not record buttonMissing and buttonRestored: $(tail -n +"$((cmark + 1))" /tmp/centre.out | quote)"
        else
            pass hotplug "unplugged: $(echo "$missing" | quote) plugged in: $(echo "$present" | quote) centre: $(echo "$restored" | quote)"
        fi
    else
        vb create
        fail hotplug "the device did not report the button missing after UI_DEV_DESTROY: $(tail -n 10 /tmp/run.out | quote)"
    fi

    # alarm: a press longer than hold_ms, delivered to the centre and acknowledged; timed in the VM.
    mark=$(run_lines)
    cmark=$(lines /tmp/centre.out)
    vb press 500
    pressed=$(field down 1)
    ack=$(wait_for /tmp/run.out "delivered.*message=alarm|message=alarm.*delivered" 60 "$mark")
    centre=$(wait_for /tmp/centre.out '"event":"alarm"' 5 "$cmark")
    if [ -n "$ack" ] && [ -n "$centre" ]; then
        ms=$(awk -v p="$pressed" -v a="${ack%% *}" 'BEGIN { printf "%.0f", (a - p) * 1000 }')
        cms=$(awk -v p="$pressed" -v a="${centre%% *}" 'BEGIN { printf "%.0f", (a - p) * 1000 }')
        pass alarm "press->ack ${ms} ms (press->centre event ${cms} ms; hold_ms = 200 included): centre: $(echo "${centre#* }" | quote) device: $(echo "${ack#* }" | quote)"
    else
        fail alarm "press at $pressed; device: ${ack:-no delivered alarm}; centre: ${centre:-no alarm event}; device log: $(tail -n 15 /tmp/run.out | quote)"
    fi

    # run-resync: the device stopped while the kernel drops its events; the key went down among them.
    mark=$(run_lines)
    kill -STOP "$PID_run"
    vb flood 1000
    kill -CONT "$PID_run"
    if down=$(wait_for /tmp/run.out "down=true" 30 "$mark"); then
        vb up
        up=$(wait_for /tmp/run.out "down=false" 30 "$mark")
        pass run-resync "after SYN_DROPPED the device read the key again: $(echo "$down" | quote) and then $(echo "${up:-no release}" | quote)"
    else
        vb up
        fail run-resync "the key went down among the dropped events; the device never saw it: $(tail -n 10 /tmp/run.out | quote)"
    fi

    stop run TERM
    [ "$STATUS" -eq 0 ] || info "devicesim run exited $STATUS on SIGTERM"
    stop centre TERM
}

check_identity
check_watch
check_record
check_syn_dropped
check_run
finish
