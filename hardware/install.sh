#!/bin/sh
# Installs DeviceKit on a device: user, binary, udev rules, systemd unit, configuration,
# and on a Raspberry Pi optionally the call button overlay. Run as root; safe to run again.
#
#   sudo sh hardware/install.sh [--config NAME] [--overlay] [--dry-run] [BINARY]
#
# See hardware/README.md. POSIX sh; checked with shellcheck.
set -eu

usage() {
	cat <<'EOF'
Usage: install.sh [--config NAME] [--overlay] [--dry-run] [BINARY]

Installs DeviceKit on this device. Run as root. Running it again changes only
what differs; it never overwrites /etc/devicekit/device.toml or the key.

  BINARY          the devicesim binary to install (default ./.build/release/devicesim)
  --config NAME   the example configuration to put in place when there is no
                  /etc/devicekit/device.toml yet: rpi-gpio (default), usb-hid,
                  serial-box or serial-contact (hardware/examples/device-NAME.toml)
  --overlay       Raspberry Pi: compile hardware/rpi/sos-button-overlay.dts, install
                  it as overlays/sos-button.dtbo and add dtoverlay=sos-button to
                  config.txt (needs dtc: apt-get install device-tree-compiler)
  --dry-run       print what would be done and change nothing
  -h, --help      this text
EOF
}

HERE=$(cd "$(dirname "$0")" && pwd)
BINARY=./.build/release/devicesim
CONFIG_NAME=rpi-gpio
OVERLAY=0
DRY_RUN=0

PREFIX_BIN=/usr/local/bin
DOC_DIR=/usr/local/share/doc/devicekit
RULES_DIR=/etc/udev/rules.d
UNIT_DIR=/etc/systemd/system
CONFIG_DIR=/etc/devicekit
SERVICE_USER=devicekit
GROUPS_NEEDED="input dialout gpio"

say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() {
	printf 'install.sh: error: %s\n' "$*" >&2
	exit 1
}

# show_command ARG...: prints a command line, quoting arguments with spaces.
show_command() {
	for arg in "$@"; do
		case $arg in
		*[[:space:]]*) printf " '%s'" "$arg" ;;
		*) printf ' %s' "$arg" ;;
		esac
	done
	printf '\n'
}

# Runs a command, or only prints it with --dry-run.
run() {
	if [ "$DRY_RUN" = 1 ]; then
		printf '  would run:'
		show_command "$@"
	else
		printf '  +'
		show_command "$@"
		"$@"
	fi
}

# install_file SOURCE DEST MODE: copies when DEST is missing or differs; sets CHANGED=1 then.
install_file() {
	if [ -f "$2" ] && cmp -s "$1" "$2"; then
		say "  $2 is up to date"
		CHANGED=0
	else
		run install -D -m "$3" "$1" "$2"
		CHANGED=1
	fi
}

# check_private FILE: device.toml and the key must be readable by the service, by nobody else.
check_private() {
	if [ -e "$1" ]; then
		owner_mode=$(stat -c '%U:%G %a' "$1")
		case $owner_mode in
		"root:$SERVICE_USER 640" | "root:$SERVICE_USER 440") say "  $1: $owner_mode, fine" ;;
		*) warn "$1 is $owner_mode; the service reads it as group $SERVICE_USER and nobody else should: chown root:$SERVICE_USER $1 && chmod 0640 $1" ;;
		esac
	fi
}

while [ $# -gt 0 ]; do
	case $1 in
	--dry-run) DRY_RUN=1 ;;
	--overlay) OVERLAY=1 ;;
	--config)
		[ $# -ge 2 ] || die "--config needs a name: rpi-gpio, usb-hid, serial-box or serial-contact"
		CONFIG_NAME=$2
		shift
		;;
	--config=*) CONFIG_NAME=${1#--config=} ;;
	-h | --help)
		usage
		exit 0
		;;
	-*) die "unknown option $1 (see --help)" ;;
	*) BINARY=$1 ;;
	esac
	shift
done

EXAMPLE="$HERE/examples/device-$CONFIG_NAME.toml"
[ -f "$EXAMPLE" ] || die "no example configuration '$CONFIG_NAME': choose rpi-gpio, usb-hid, serial-box or serial-contact"

if [ "$(id -u)" != 0 ]; then
	if [ "$DRY_RUN" = 1 ]; then
		warn "not root: fine for --dry-run, but the real run needs root (sudo sh $0 ...)"
	else
		die "run as root: sudo sh $0 ..."
	fi
fi
[ "$DRY_RUN" = 1 ] && say "Dry run: nothing is changed."

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# --- 1. Groups and the service user -------------------------------------------
step "User $SERVICE_USER"
# The unit names these groups in SupplementaryGroups=; a missing one stops the
# service from starting (216/GROUP). gpio exists on Raspberry Pi OS only.
for group in $GROUPS_NEEDED; do
	if getent group "$group" >/dev/null; then
		say "  group $group exists"
	else
		run groupadd --system "$group"
	fi
done
if id -u "$SERVICE_USER" >/dev/null 2>&1; then
	say "  user $SERVICE_USER exists"
else
	nologin=$(command -v nologin || echo /usr/sbin/nologin)
	run useradd --system --user-group --no-create-home --home-dir /var/lib/devicekit \
		--shell "$nologin" --comment "DeviceKit emergency call daemon" "$SERVICE_USER"
fi
run usermod --append --groups "$(echo "$GROUPS_NEEDED" | tr ' ' ',')" "$SERVICE_USER"

# --- 2. The binary and the documentation --------------------------------------
step "Binary $PREFIX_BIN/devicesim"
BINARY_CHANGED=0
if [ -f "$BINARY" ] && [ -x "$BINARY" ]; then
	install_file "$BINARY" "$PREFIX_BIN/devicesim" 0755
	BINARY_CHANGED=$CHANGED
elif [ "$DRY_RUN" = 1 ]; then
	warn "no executable at $BINARY: the real run would stop here (build with 'make device-binary', or give the path)"
else
	die "no executable at $BINARY: build it with 'make device-binary' (.build/release/devicesim), or give its path"
fi
for doc in README.md WIRING.md serial-box-protocol.md; do
	install_file "$HERE/$doc" "$DOC_DIR/$doc" 0644
done

# --- 3. udev rules -------------------------------------------------------------
step "udev rules $RULES_DIR/71-devicekit.rules"
install_file "$HERE/udev/71-devicekit.rules" "$RULES_DIR/71-devicekit.rules" 0644
if command -v udevadm >/dev/null 2>&1 && udevadm control --ping >/dev/null 2>&1; then
	run udevadm control --reload
	run udevadm trigger --action=change --subsystem-match=input --subsystem-match=tty --subsystem-match=leds
	run udevadm settle --timeout=10
else
	say "  udevd is not running (a container or a chroot?): skipped reload and trigger;"
	say "  the rules take effect at the next boot"
fi

# --- 4. systemd unit -----------------------------------------------------------
step "systemd unit $UNIT_DIR/devicekit.service"
install_file "$HERE/systemd/devicekit.service" "$UNIT_DIR/devicekit.service" 0644
UNIT_CHANGED=$CHANGED
if [ -d /run/systemd/system ]; then
	run systemctl daemon-reload
	run systemctl enable devicekit.service
	if systemctl is-active --quiet devicekit.service; then
		if [ "$BINARY_CHANGED" = 1 ] || [ "$UNIT_CHANGED" = 1 ]; then
			run systemctl restart devicekit.service
		fi
	fi
elif command -v systemctl >/dev/null 2>&1; then
	say "  systemd is not running here: enabling without a reload"
	run systemctl enable devicekit.service
else
	warn "no systemctl: enable devicekit.service by hand"
fi

# --- 5. Configuration ------------------------------------------------------------
step "Configuration $CONFIG_DIR"
# root:devicekit 0750: the service reads it, cannot change it; others see nothing.
run install -d -m 0750 -o root -g "$SERVICE_USER" "$CONFIG_DIR"
if [ -e "$CONFIG_DIR/device.toml" ]; then
	say "  $CONFIG_DIR/device.toml exists: kept as it is"
	check_private "$CONFIG_DIR/device.toml"
	if grep -Eq 'cent(er|re)\.example' "$CONFIG_DIR/device.toml"; then
		warn "$CONFIG_DIR/device.toml still names center.example: set device_id and [center]"
	fi
else
	run install -m 0640 -o root -g "$SERVICE_USER" "$EXAMPLE" "$CONFIG_DIR/device.toml"
	say "  from examples/device-$CONFIG_NAME.toml: set device_id and [center] in it"
fi
NEED_KEY=0
if [ -e "$CONFIG_DIR/key" ]; then
	say "  $CONFIG_DIR/key exists: kept as it is"
	check_private "$CONFIG_DIR/key"
elif [ -e "$CONFIG_DIR/device.toml" ] && grep -Eq '^[[:space:]]*key[[:space:]]*=' "$CONFIG_DIR/device.toml"; then
	say "  device.toml holds the key itself (key = ...): no key file needed"
else
	NEED_KEY=1
fi

# --- 6. Raspberry Pi overlay (--overlay) ------------------------------------------
if [ "$OVERLAY" = 1 ]; then
	step "Device-tree overlay sos-button"
	command -v dtc >/dev/null 2>&1 || die "dtc not found: apt-get install device-tree-compiler"
	if [ -d /boot/firmware/overlays ]; then
		BOOT=/boot/firmware # Raspberry Pi OS Bookworm and later
	elif [ -d /boot/overlays ]; then
		BOOT=/boot # older releases
	else
		die "neither /boot/firmware/overlays nor /boot/overlays exists: is this Raspberry Pi OS?"
	fi
	# Compiled even in a dry run: it changes nothing and shows an error early.
	dtc -@ -I dts -O dtb -o "$WORK/sos-button.dtbo" "$HERE/rpi/sos-button-overlay.dts"
	# 0755 like the Pi's own overlays: the boot partition is FAT, where every file
	# has the mount's mode and a chmod to anything else fails.
	install_file "$WORK/sos-button.dtbo" "$BOOT/overlays/sos-button.dtbo" 0755
	CONFIG_TXT=$BOOT/config.txt
	if [ -f "$CONFIG_TXT" ] && grep -Eq '^[[:space:]]*dtoverlay=sos-button([,:[:space:]]|$)' "$CONFIG_TXT"; then
		say "  $CONFIG_TXT already loads sos-button"
	else
		if [ -f "$CONFIG_TXT" ] && [ ! -e "$CONFIG_TXT.devicekit-backup" ]; then
			run cp -p "$CONFIG_TXT" "$CONFIG_TXT.devicekit-backup"
		fi
		# [all] first: config.txt may end inside a [pi4] or [cm4] section.
		if [ "$DRY_RUN" = 1 ]; then
			say "  would append to $CONFIG_TXT: [all] / dtoverlay=sos-button"
		else
			say "  + append [all] / dtoverlay=sos-button to $CONFIG_TXT"
			printf '\n# DeviceKit call button and LEDs (hardware/rpi/sos-button-overlay.dts)\n[all]\ndtoverlay=sos-button\n' >>"$CONFIG_TXT"
		fi
		say "  reboot to load the overlay"
	fi
	# The stock overlays send KEY_POWER, which makes systemd-logind shut down.
	if [ -f "$CONFIG_TXT" ] && grep -Eq '^[[:space:]]*dtoverlay=(gpio-key|gpio-shutdown)([,:[:space:]]|$)' "$CONFIG_TXT"; then
		warn "$CONFIG_TXT also loads gpio-key or gpio-shutdown: they send KEY_POWER and shut the device down; remove them unless wanted"
	fi
fi

# --- Next steps ------------------------------------------------------------------------
step "Next steps"
if [ "$NEED_KEY" = 1 ]; then
	cat <<EOF
  The device has no key yet. Provision it on the provisioning workstation (never
  on the device: the fleet master key must not reach it), for example:
    devicesim provision --id 1001 --center center.example:7700 --no-state \\
        --registry centre-keys.toml --out device-1001.toml
  (or --master-file FILE instead of --registry when the centre derives keys).
  Copy the key from device-1001.toml to this device as one line of hex:
    sed -n 's/^key = "\\([0-9a-fA-F]*\\)"\$/\\1/p' device-1001.toml |
        ssh root@DEVICE 'umask 027 && cat > $CONFIG_DIR/key && chgrp $SERVICE_USER $CONFIG_DIR/key'
  set device_id, key_epoch and [center] in $CONFIG_DIR/device.toml to match, then on this device
  write the new key's frame counter reservation (only ever for a key that has never been used):
    runuser -u $SERVICE_USER -- devicesim provision --init-state --config $CONFIG_DIR/device.toml
EOF
fi
cat <<EOF
  Check the wiring:   devicesim diag list
                      devicesim diag selftest --config $CONFIG_DIR/device.toml
  Start:              systemctl start devicekit      (it starts at every boot from now on)
  Watch:              systemctl status devicekit;  journalctl -u devicekit -f
EOF
[ "$DRY_RUN" = 1 ] && say "Dry run: nothing was changed."
exit 0
