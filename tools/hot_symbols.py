#!/usr/bin/env python3
"""The functions the idle device runs, for the linker to put together: hardware/device-hot-symbols.txt.

Once start-up's pages are given back (StartupPages), what the idle `devicesim run` keeps resident is mostly the
code of its heartbeats, timers and logging: about 240 KB of functions, but spread over some 140 of the 64 KB
windows the kernel maps at each page fault (fault-around), 8.8 MB. `make device-binary` links the functions
listed here first in the text (lld's `--symbol-ordering-file`, each function in its own section), so that they
take a few windows instead.

This runs the device (the centre and the provisioning as tools/idle_bench.py does) under valgrind's callgrind
with instrumentation off, turns it on `--settle` seconds after the start (the session is up by then), records
`--hold` seconds of idling, and writes every function of the executable that ran, mangled, one per line,
sorted (so that the file changes only where the code does). Functions renamed since are ignored by the linker:
a stale list costs memory, never correctness.

    tools/hot_symbols.py --binary .build/release/devicesim [--settle 30] [--hold 100] [--out FILE]

Needs valgrind (`make hot-symbols` installs it). Valgrind cannot read the toolchain's debug information, so
the binary is run from a copy without it (llvm-objcopy --strip-debug).
"""
import argparse, os, re, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idle_bench import running_device  # noqa: E402


def executed_functions(profile, executable):
    """Every function of `executable` that a callgrind profile saw run (as caller or callee), mangled."""
    names, objects, found = {}, {}, set()
    current, callee_object = None, None

    def reference(table, text):
        match = re.match(r"\((\d+)\)(?: (.*))?$", text)
        if not match:
            return text
        if match.group(2) is not None:
            table[match.group(1)] = match.group(2)
        return table.get(match.group(1))

    with open(profile) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("ob="):
                current, callee_object = reference(objects, line[3:]), None
            elif line.startswith("cob="):
                callee_object = reference(objects, line[4:])
            elif line.startswith("fn=") or line.startswith("cfn="):
                is_call = line.startswith("cfn=")
                name = reference(names, line[4:] if is_call else line[3:])
                owner = (callee_object or current) if is_call else current
                if not is_call:
                    callee_object = None
                if name and owner and os.path.basename(owner) == executable and not name.startswith("0x"):
                    found.add(re.sub(r"'\d+$", "", name))  # callgrind's mark of a recursion level
    return sorted(found)


def control(pid, command):
    done = subprocess.run(["callgrind_control", command, str(pid)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"callgrind_control {command} failed: {done.stderr or done.stdout}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=".build/release/devicesim")
    parser.add_argument("--settle", type=float, default=30, help="seconds from the device's start to recording")
    parser.add_argument("--hold", type=float, default=100, help="seconds recorded (the heartbeat is every 30 s)")
    parser.add_argument("--out", default="hardware/device-hot-symbols.txt")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: `make hot-symbols` installs valgrind")
    swift = shutil.which("swift")
    objcopy = os.path.join(os.path.dirname(os.path.realpath(swift)), "llvm-objcopy") if swift else None
    if not objcopy or not os.path.exists(objcopy):
        raise SystemExit("llvm-objcopy (next to the Swift toolchain's swift) is missing")
    with tempfile.TemporaryDirectory() as directory:
        binary = os.path.join(directory, "devicesim")
        subprocess.run([objcopy, "--strip-debug", os.path.abspath(args.binary), binary], check=True)
        profile = os.path.join(directory, "callgrind.out")
        wrapper = ["valgrind", "--tool=callgrind", "--demangle=no", "--instr-atstart=no", f"--callgrind-out-file={profile}"]
        with running_device(binary, "tcp", directory, wrapper) as (device, device_log):
            time.sleep(args.settle)
            device_log.seek(0)
            log = device_log.read()
            if device.poll() is not None or "session established" not in log:
                raise SystemExit(f"the device has no session after {args.settle} s; its log:\n{log[-4000:]}")
            control(device.pid, "--instr=on")
            time.sleep(args.hold)
            control(device.pid, "--dump")
            dumps = []
            for _ in range(100):
                dumps = [name for name in os.listdir(directory) if re.fullmatch(r"callgrind\.out\.\d+", name)]
                if dumps and os.path.getsize(os.path.join(directory, dumps[0])) > 0:
                    time.sleep(1)  # written to the end
                    break
                time.sleep(0.1)
            if not dumps:
                raise SystemExit("callgrind wrote no profile")
        functions = executed_functions(os.path.join(directory, sorted(dumps)[-1]), "devicesim")
    if not functions:
        raise SystemExit("no function of devicesim ran while recording")
    with open(args.out, "w") as f:
        f.write("\n".join(functions) + "\n")
    print(f"{len(functions)} functions -> {args.out}")


if __name__ == "__main__":
    main()
