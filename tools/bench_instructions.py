#!/usr/bin/env python3
"""Instructions per step of each hot-path workload (Benchmarks/Sources/HotPaths), counted by callgrind.

Instruction counts, unlike times, barely move on a shared machine, so they are the figures compared across
commits (docs/benchmarks.md, "Benchmarks as code"). This machine's VM has no hardware performance counters
(`perf stat -e instructions` answers "not supported"), so valgrind's callgrind counts them: only inside
`measuredSteps` (`--toggle-collect`), where the steps run, set-up excluded.

Each workload runs twice, with N and 2N steps; a step costs (I(2N) - I(N)) / N instructions, which removes
what runs once (first-call lazy set-up, the loop's entry).

    tools/bench_instructions.py                         # every workload, a table
    tools/bench_instructions.py --save docs/bench/x.json  # and keep the figures with date and commit
    tools/bench_instructions.py --compare docs/bench/x.json  # ratios to figures kept earlier

Needs valgrind (`make bench` installs it) and the built `instructions` tool
(`swift build -c release --package-path Benchmarks --product instructions`).
"""
import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BINARY = os.path.join(ROOT, "Benchmarks", ".build", "release", "instructions")


def fail(message):
    print(f"bench_instructions: {message}", file=sys.stderr)
    sys.exit(2)


def count(binary, workload, steps, workdir):
    out = os.path.join(workdir, f"{workload}-{steps}.callgrind")
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--toggle-collect=*measuredSteps*", f"--callgrind-out-file={out}",
         binary, workload, str(steps)],
        capture_output=True, text=True)
    if run.returncode != 0:
        fail(f"{workload} with {steps} steps failed (exit {run.returncode}):\n{run.stdout}{run.stderr[-2000:]}")
    with open(out) as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    fail(f"no summary line in callgrind's output for {workload}")


def commit():
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD", "--", "Sources", "Benchmarks"]).returncode
        return head + ("-modified" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=DEFAULT_BINARY, help="the instructions tool (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=2000, help="N: each workload runs N and 2N steps (default 2000)")
    parser.add_argument("--only", action="append", help="a workload's name (repeatable); default: all")
    parser.add_argument("--save", help="write the figures, with date and commit, to this JSON file")
    parser.add_argument("--compare", help="a JSON file written by --save: print each figure's ratio to it")
    args = parser.parse_args()
    if args.steps < 1:
        fail("--steps must be at least 1")
    if not shutil.which("valgrind"):
        fail("valgrind is not installed (make bench installs it: apt-get install valgrind)")
    if not os.access(args.binary, os.X_OK):
        fail(f"{args.binary} is missing: swift build -c release --package-path Benchmarks --product instructions")
    listed = subprocess.run([args.binary, "--list"], capture_output=True, text=True, check=True).stdout
    workloads = [tuple(line.split("\t", 1)) for line in listed.splitlines() if line]
    if args.only:
        unknown = set(args.only) - {name for name, _ in workloads}
        if unknown:
            fail(f"no such workload: {', '.join(sorted(unknown))} (known: {', '.join(n for n, _ in workloads)})")
        workloads = [w for w in workloads if w[0] in args.only]
    baseline = {}
    if args.compare:
        with open(args.compare) as f:
            saved = json.load(f)
        baseline = saved["instructionsPerStep"]
        print(f"compared with {args.compare}: commit {saved['commit']}, {saved['date']}")

    with tempfile.TemporaryDirectory() as workdir:
        # valgrind 3.19 cannot read the DWARF 5 that Swift's toolchain writes; the symbol table is enough.
        binary = os.path.join(workdir, "instructions")
        subprocess.run(["strip", "--strip-debug", "-o", binary, args.binary], check=True)
        results = {}
        print(f"{'workload':34} {'instructions/step':>18} {'ratio':>7}  what a step does")
        for name, summary in workloads:
            once = count(binary, name, args.steps, workdir)
            twice = count(binary, name, 2 * args.steps, workdir)
            per_step = round((twice - once) / args.steps)
            results[name] = per_step
            ratio = f"{per_step / baseline[name]:.2f}" if name in baseline else ""
            print(f"{name:34} {per_step:>18,} {ratio:>7}  {summary}", flush=True)

    if args.save:
        record = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "commit": commit(),
            "steps": args.steps,
            "valgrind": subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip(),
            "instructionsPerStep": results,
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.save)), exist_ok=True)
        with open(args.save, "w") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
        print(f"saved to {args.save}")


if __name__ == "__main__":
    main()
