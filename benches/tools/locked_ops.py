#!/usr/bin/env python3
"""Counts the locked instructions (`lock`-prefixed RMWs, `xchg` with memory, `mfence`) a
run executed, per function, from a callgrind profile taken with `--dump-instr=yes`.

Locked instructions are what the session workload's writes spend most on beyond a map's
(see README, "Where the time goes"): each costs about 10 ns on the development VM, and
callgrind counts every one of them exactly, where the VM's timings drift. Usage:

    cargo build --release --example session_cost
    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file=/tmp/cg.wc \\
        target/release/examples/session_cost wheelcache
    python3 benches/tools/locked_ops.py /tmp/cg.wc target/release/examples/session_cost

It disassembles the binary with `objdump`, finds each locked instruction's address, and
sums the executions callgrind recorded there (a call site's line after `calls=` is the
call's inclusive cost, not an execution, and is skipped). Two-byte NOPs written as
`xchg %ax,%ax` are not counted.
"""

import collections
import re
import subprocess
import sys


def locked_addresses(exe):
    """Address -> (function, instruction) for every locked instruction in `exe`."""
    out = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", "-C", exe],
        capture_output=True, text=True, check=True,
    ).stdout
    found, function = {}, None
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
        if m:
            function = m.group(2)
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(lock\b.*|xchg\s.*|mfence.*)$", line)
        if m and "%ax,%ax" not in m.group(2):
            found[int(m.group(1), 16)] = (function, m.group(2))
    return found


def executions(profile, wanted):
    """Address -> times executed, for the addresses in `wanted`."""
    counts = collections.Counter()
    address, after_call = 0, False
    with open(profile) as f:
        for line in f:
            if line.startswith("calls="):
                after_call = True
                continue
            if not line or line[0] not in "0123456789+-*":
                continue
            parts = line.split()
            a = parts[0]
            if a.startswith("0x"):
                address = int(a, 16)
            elif a.startswith("+"):
                address += int(a[1:])
            elif a.startswith("-"):
                address -= int(a[1:])
            if after_call:
                after_call = False
                continue
            if len(parts) >= 3 and address in wanted:
                counts[address] += int(parts[2])
    return counts


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    profile, exe = sys.argv[1], sys.argv[2]
    wanted = locked_addresses(exe)
    counts = executions(profile, wanted)
    by_function = collections.Counter()
    for address, n in counts.items():
        by_function[wanted[address][0][:110]] += n
    print(f"locked instructions executed: {sum(counts.values())}")
    for function, n in by_function.most_common(25):
        print(f"{n:>10}  {function}")


if __name__ == "__main__":
    main()
