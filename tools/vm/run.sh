#!/usr/bin/env bash
# The VM test: devicesim against a real Linux kernel's input subsystem.
#
#   tools/vm/run.sh [DEVICESIM]        build the initramfs, boot it under qemu, check the result lines
#   tools/vm/run.sh --missing-packages print the Debian packages this needs and lacks (for `make vm-deps`)
#
# It boots Debian's kernel (linux-image-amd64) with a small initramfs under qemu-system-x86_64: busybox, the
# evdev and uinput modules (with their dependencies), DEVICESIM (default .build/debug/devicesim) with its
# shared libraries and loader, and vbutton (tools/vm/vbutton.c, compiled here with gcc -static), a virtual
# call button made with uinput. tools/vm/init.sh runs as /init: every check goes through devicesim's command
# line, and each prints one line `VMTEST <check> PASS|FAIL <what was seen>`; the last is
# `VMTEST verdict PASS|FAIL`. This script fails (exit 1, with the VM's whole console log) on any FAIL, a
# check that did not report, no verdict, a timeout, or a VM that could not start. It never skips: what is
# missing is an error that says how to install it (`make vm-deps`).
#
# Environment: VM_TIMEOUT (seconds, default 480), VM_ACCEL (tcg, the default, or kvm), VM_SMP (default 2),
# VM_MEMORY (MiB, default 1536), VM_WORK (build folder, default .build/vm), VM_KERNEL (a vmlinuz whose
# modules are in /lib/modules/<version>).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/tools/vm"

# The checks tools/vm/init.sh runs; each must report PASS.
CHECKS=(identity watch-held watch-presses record analyze grab-refused grab-exclusive grab-elsewhere syn-dropped
        hotplug alarm run-resync)

die() { echo "vm-test: $*" >&2; exit 1; }

# The newest /boot/vmlinuz-* whose modules are installed.
find_kernel() {
    if [ -n "${VM_KERNEL:-}" ]; then echo "$VM_KERNEL"; return; fi
    local k v
    for k in $(ls /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
        v=${k#/boot/vmlinuz-}
        if [ -f "/lib/modules/$v/modules.dep" ]; then echo "$k"; return; fi
    done
}

static_busybox() {
    [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1
}

missing_packages() {
    local missing=()
    command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
    [ -n "$(find_kernel)" ] || missing+=(linux-image-amd64)
    static_busybox || missing+=(busybox-static)
    command -v cpio >/dev/null || missing+=(cpio)
    command -v gcc >/dev/null || missing+=(gcc)
    [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(libc6-dev)
    command -v strip >/dev/null || missing+=(binutils)
    command -v xz >/dev/null || missing+=(xz-utils)
    command -v zstd >/dev/null || missing+=(zstd)
    echo "${missing[@]}"
}

if [ "${1:-}" = "--missing-packages" ]; then
    missing_packages
    exit 0
fi

DEVICESIM=${1:-$ROOT/.build/debug/devicesim}
missing=$(missing_packages)
[ -z "$missing" ] || die "missing: $missing. Run \`make vm-deps\` (or: apt-get install -y --no-install-recommends $missing)"
[ -x "$DEVICESIM" ] || die "$DEVICESIM does not exist: build it first (swift build --product devicesim)"

KERNEL=$(find_kernel)
[ -r "$KERNEL" ] || die "cannot read the kernel $KERNEL (run as root, or make it readable)"
KVERSION=${KERNEL##*/vmlinuz-}
MODULES=/lib/modules/$KVERSION
WORK=${VM_WORK:-$ROOT/.build/vm}
TREE=$WORK/initramfs
rm -rf "$TREE"
mkdir -p "$TREE"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,lib/modules,etc,proc,sys,dev,tmp,run,root}

# --- the initramfs -------------------------------------------------------------------------------
build_started=$EPOCHREALTIME

gcc -static -O2 -Wall -Wextra -Werror -o "$TREE/usr/local/bin/vbutton" "$HERE/vbutton.c"
cp /bin/busybox "$TREE/bin/busybox"

# evdev and uinput with what they depend on, in load order, decompressed (busybox insmod reads plain .ko).
declare -A loaded=()
load_order=()
add_module() {
    local name=$1 line path deps dep
    line=$(grep -E "(^|/)$name\.ko(\.xz|\.zst|\.gz)?:" "$MODULES/modules.dep" || true)
    if [ -z "$line" ]; then
        # Built into this kernel: nothing to load.
        grep -qE "/$name\.ko" "$MODULES/modules.builtin" 2>/dev/null \
            || die "$KVERSION has neither a module nor a built-in $name"
        return
    fi
    path=${line%%:*}
    [ -z "${loaded[$path]:-}" ] || return 0
    loaded[$path]=1
    deps=${line#*:}
    for dep in $deps; do
        dep=${dep##*/}
        add_module "${dep%%.ko*}"
    done
    local out="$TREE/lib/modules/${path##*/}"
    out=${out%.xz}; out=${out%.zst}; out=${out%.gz}
    case "$path" in
        *.xz) xz -dc "$MODULES/$path" >"$out" ;;
        *.zst) zstd -qdc "$MODULES/$path" >"$out" ;;
        *.gz) gzip -dc "$MODULES/$path" >"$out" ;;
        *) cp "$MODULES/$path" "$out" ;;
    esac
    load_order+=("${out##*/}")
}
add_module evdev
add_module uinput
printf '%s\n' "${load_order[@]}" >"$TREE/lib/modules/order"

# devicesim, without its debug information, and every shared library it loads, at the same paths.
strip --strip-debug -o "$TREE/usr/local/bin/devicesim" "$DEVICESIM"
ldd "$DEVICESIM" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }' | while read -r lib; do
    mkdir -p "$TREE$(dirname "$lib")"
    cp -L "$lib" "$TREE$lib"
done
ldd "$DEVICESIM" | grep -q 'not found' && die "devicesim needs libraries that are not installed: $(ldd "$DEVICESIM" | grep 'not found')"
[ -e "$TREE/lib64/ld-linux-x86-64.so.2" ] || die "ldd named no loader for $DEVICESIM"

printf 'root:x:0:0:root:/root:/bin/sh\n' >"$TREE/etc/passwd"
printf 'root:x:0:\ninput:x:101:\n' >"$TREE/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$TREE/etc/hosts"
install -m 0755 "$HERE/init.sh" "$TREE/init"

( cd "$TREE" && find . -print0 | cpio --null --create --format=newc --quiet ) >"$WORK/initramfs.cpio"
build_seconds=$(awk -v a="$build_started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
initramfs_mb=$(( $(stat -c %s "$WORK/initramfs.cpio") / 1048576 ))

# --- boot ----------------------------------------------------------------------------------------
ACCEL=${VM_ACCEL:-tcg}
TIMEOUT=${VM_TIMEOUT:-480}
LOG=$WORK/console.log
echo "vm-test: booting $KERNEL ($KVERSION) under qemu ($ACCEL, ${VM_SMP:-2} CPUs), initramfs ${initramfs_mb} MB built in ${build_seconds} s; console log: $LOG"

rm -f "$LOG" "$LOG.tmp"
touch "$LOG.tmp"
started=$EPOCHREALTIME
boot_seconds=""
set +e
timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
    -accel "$ACCEL" -m "${VM_MEMORY:-1536}" -smp "${VM_SMP:-2}" \
    -nodefaults -nographic -no-reboot -serial stdio -monitor none -nic none \
    -kernel "$KERNEL" -initrd "$WORK/initramfs.cpio" \
    -append "console=ttyS0 panic=-1 quiet" </dev/null 2>&1 |
while IFS= read -r line; do
    line=${line%$'\r'}
    # The firmware's terminal resets may precede the first line of /init on the same line.
    case "$line" in *VMTEST*) line="VMTEST ${line#*VMTEST }" ;; esac
    printf '%s\n' "$line" >>"$LOG.tmp"
    case "$line" in
        "VMTEST boot init-started"*)
            elapsed=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
            printf 'VMTEST boot host-seconds=%s (qemu start to /init running)\n' "$elapsed" >>"$LOG.tmp" ;;
    esac
    case "$line" in VMTEST*) printf '%s\n' "$line" ;; esac
done
status=("${PIPESTATUS[@]}")
set -e
mv "$LOG.tmp" "$LOG"
total=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

# --- verdict -------------------------------------------------------------------------------------
problems=()
case "${status[0]}" in
    0) ;;
    124|137) problems+=("the VM did not finish within ${TIMEOUT} s (VM_TIMEOUT)") ;;
    *) problems+=("qemu exited with status ${status[0]}") ;;
esac
grep -q '^VMTEST boot init-started' "$LOG" || problems+=("the VM never ran /init (the kernel did not boot, or qemu could not start)")
for check in "${CHECKS[@]}"; do
    if ! grep -q "^VMTEST $check \(PASS\|FAIL\)" "$LOG"; then problems+=("check $check did not report"); fi
done
while IFS= read -r line; do problems+=("${line#VMTEST }"); done < <(grep '^VMTEST [a-z-]* FAIL' "$LOG" || true)
grep -q '^VMTEST verdict PASS' "$LOG" || problems+=("no PASS verdict from the VM")

boot=$(sed -n 's/^VMTEST boot host-seconds=\([0-9.]*\).*/\1/p' "$LOG")
echo "vm-test: /init ran ${boot:-?} s after qemu started; the whole VM run took ${total} s"
if [ ${#problems[@]} -gt 0 ]; then
    echo "vm-test: FAILED. The VM's console log ($LOG):"
    sed 's/^/  | /' "$LOG"
    printf 'vm-test: FAIL: %s\n' "${problems[@]}"
    exit 1
fi
echo "vm-test: all ${#CHECKS[@]} checks passed"
