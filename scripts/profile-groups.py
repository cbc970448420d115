#!/usr/bin/python3
"""Groups the samples of Go CPU profiles (merged) the way issue 13 reports them.

usage: profile-groups.py [-n MESSAGES] LABEL=FILE[,FILE...] ...

Each sample's stack is read leaf first: runtime leaves go to GC/alloc or scheduler/futex by the
runtime frames on the stack (cgo calls are passed through to their caller), other leaves to the
first frame on the stack of a known library. With -n the groups are also given in CPU µs per
message (the profile's samples divided by MESSAGES)."""
import re
import subprocess
import sys

GROUPS = [
    ("SQLite", re.compile(r"go-sqlite3|database/sql|go\.mau\.fi/util/dbutil|lib/pq")),
    ("Megolm/Olm", re.compile(r"mautrix/crypto|/olm|goolm")),
    ("OMEMO engine", re.compile(r"xmpp-bridge/omemo\b|xmpp-bridge/omemo/")),
    ("XML/XMPP", re.compile(r"encoding/xml|mellium\.im|xmpp-bridge/xmpp/")),
    ("HTTP/JSON", re.compile(r"encoding/json|net/http|net/url|mautrix\.\(\*Client\)|maunium\.net/go/mautrix/appservice|mautrix/event")),
    ("TLS/crypto", re.compile(r"^crypto/")),
    ("logging", re.compile(r"zerolog")),
    ("network syscalls", re.compile(r"^syscall\.|internal/poll|^net\.")),
    ("bridgev2", re.compile(r"maunium\.net/go/mautrix")),
    ("our code", re.compile(r"xmpp-bridge/")),
]
GC = re.compile(r"runtime\.(mallocgc|gcBgMarkWorker|gcAssist|scanobject|markroot|gcDrain|bgsweep|bgscavenge|sweepone|newobject|makeslice|growslice|makemap|mapassign|rawstring|concatstring|slicebytetostring|gcStart|wbBuf|gcWriteBarrier|memclr)")
SCHED = re.compile(r"runtime\.(schedule|findRunnable|futex|park_m|stopm|notesleep|mPark|netpoll|goready|ready|wakep|startm|mcall|gopark|goexit0|lock2|unlock2|usleep|osyield|semasleep|semawakeup|runqgrab|stealWork|chansend|chanrecv|selectgo|exitsyscall|entersyscall|reentersyscall|sysmon|notewakeup|handoffp|casgstatus)")


def classify(stack):
    leaf = stack[0]
    if leaf.startswith(("runtime.", "internal/runtime", "aeshash", "memeqbody", "indexbyte", "cmpbody", "gcWriteBarrier")) and not leaf.startswith("runtime.cgocall"):
        for f in stack:
            if GC.search(f):
                return "GC/alloc"
        for f in stack:
            if SCHED.search(f):
                return "scheduler/futex"
    for f in stack:
        for name, rx in GROUPS:
            if rx.search(f):
                return name
    return "other runtime"


def samples(files):
    out = subprocess.run(["go", "tool", "pprof", "-traces", *files], capture_output=True, text=True, check=True).stdout
    total = {}
    for block in out.split("-----------+-------------------------------------------------------")[1:]:
        lines = [l for l in block.strip("\n").split("\n") if l.strip()]
        if not lines:
            continue
        m = re.match(r"\s*([\d.]+)(ms|s|us|µs)\s+(.*)", lines[0])
        if not m:
            continue
        v = float(m.group(1)) * {"s": 1e6, "ms": 1e3, "us": 1, "µs": 1}[m.group(2)]
        stack = [m.group(3).strip()] + [l.strip() for l in lines[1:]]
        stack = [re.sub(r" \(inline\)$", "", f) for f in stack]
        g = classify(stack)
        total[g] = total.get(g, 0) + v
    return total


def main():
    args = sys.argv[1:]
    n = 0
    if len(args) >= 2 and args[0] == "-n":
        n = int(args[1])
        args = args[2:]
    cols = []
    for a in args:
        label, files = a.split("=", 1)
        cols.append((label, samples(files.split(","))))
    names = [g for g, _ in GROUPS] + ["GC/alloc", "scheduler/futex", "other runtime"]
    names.sort(key=lambda g: -sum(c.get(g, 0) for _, c in cols))
    hdr = "%-18s" % "profile group" + "".join("%22s" % l for l, _ in cols)
    print(hdr)
    for g in names + ["total"]:
        row = "%-18s" % g
        for _, c in cols:
            tot = sum(c.values())
            v = tot if g == "total" else c.get(g, 0)
            cell = "%5.1f %%" % (100 * v / tot if tot else 0)
            if n:
                cell += " %6.0f µs" % (v / n)
            row += "%22s" % cell
        print(row)


if __name__ == "__main__":
    main()
