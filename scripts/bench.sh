#!/bin/bash
# Prints the performance figures the issues set targets for:
#  - the OMEMO engine beside go.mau.fi/libsignal (OMEMO 0.3) in the same run, as ratios;
#  - the bridge's CPU per bridged OMEMO message each way (homeserver excluded): the connector's
#    own work in-process (stanza, OMEMO, inbox transaction on SQLite), and the whole bridge process
#    in the real stack (Prosody, Dendrite, Megolm portal, matrix-nio; BenchmarkBridgeCPU in e2e/).
# BENCHTIME (default 2s) and COUNT (default 3, the median is reported) tune the runs (the OMEMO
# engine's run uses OMEMO_COUNT, default 5; its ratios are of CPU time per op, "cpu-ns/op", which
# a machine shared with other work disturbs far less than wall time); MESSAGES
# (default 300) is the number of messages each way in the whole-process run; E2E=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
benchtime=${BENCHTIME:-2s}
count=${COUNT:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

go test -tags goolm -run '^$' -bench 'SameChain|PingPong|SessionSetup|Encrypt10' -benchmem \
	-benchtime "$benchtime" -count "${OMEMO_COUNT:-5}" ./omemo/ >"$out"
go test -tags goolm -run '^$' -bench 'OMEMOIncoming|OMEMOOutgoing' -benchmem \
	-benchtime "$benchtime" -count "$count" ./bridge/ >>"$out"
if [ "${E2E:-1}" != 0 ]; then
	make -s deps dendrite >/dev/null
	go test -tags 'goolm integration' -run '^$' -bench 'BridgeCPU' -benchtime "${MESSAGES:-300}x" -timeout 30m ./e2e/ >>"$out"
fi

# median ns/op (and allocs/op) per benchmark name
awk '
/^BenchmarkBridgeCPU/ {
	for (i=2; i<=NF; i++) { if ($(i+1)=="cpu-µs/in-msg") wholeIn=$i; if ($(i+1)=="cpu-µs/out-msg") wholeOut=$i }
	next
}
/^Benchmark/ {
	name=$1; sub(/-[0-9]+$/, "", name)
	for (i=2; i<=NF; i++) { if ($(i+1)=="ours/floor") ovf=ovf " " $i; if ($(i+1)=="ns/op") ns[name]=ns[name] " " $i; if ($(i+1)=="allocs/op") al[name]=$i; if ($(i+1)=="cpu-µs/op"||$(i+1)=="cpu-us/op") cpu[name]=cpu[name] " " $i; if ($(i+1)=="cpu-ns/op") cns[name]=cns[name] " " $i }
}
function median(list,   a, n, i, j, t) {
	n=split(list, a, " ")
	for (i=1; i<=n; i++) for (j=i+1; j<=n; j++) if (a[j]+0 < a[i]+0) { t=a[i]; a[i]=a[j]; a[j]=t }
	return a[int((n+1)/2)]
}
END {
	# OMEMO engine: wall µs (median), CPU µs (median), allocs; ratio = libsignal CPU / ours CPU.
	printf "%-14s %9s %9s %7s %13s %8s %8s   %s\n", "OMEMO engine", "ours µs", "cpu µs", "allocs", "libsignal cpu", "allocs", "ratio", "target"
	split("SameChain PingPong SessionSetup Encrypt10", ops, " ")
	split("- - >=2.5x >=4x", tgt, " ")
	for (k=1; k<=4; k++) {
		o="Benchmark" ops[k] "/ours"; l="Benchmark" ops[k] "/libsignal"
		if (!(o in ns)) continue
		co=(o in cns) ? median(cns[o]) : median(ns[o]); cl=(l in cns) ? median(cns[l]) : median(ns[l])
		printf "%-14s %9.1f %9.1f %7s %13.1f %8s %7.2fx   %s\n", ops[k], median(ns[o])/1000, co/1000, al[o], cl/1000, al[l], cl/co, (tgt[k]=="-" ? "" : tgt[k])
	}
	f="BenchmarkSameChain/floor"; o="BenchmarkSameChain/ours"
	if ((f in ns) && (o in ns)) {
		co=(o in cns) ? median(cns[o]) : median(ns[o]); cf=(f in cns) ? median(cns[f]) : median(ns[f])
		printf "%-14s %9.1f %9.1f %7s %13s %8s %7.2fx   <=1.2x (ours over the floor)\n", "SameChainFloor", median(ns[f])/1000, cf/1000, al[f], "", "", co/cf
	}
	if (ovf != "") printf "%-14s %9s %9s %7s %13s %8s %7.2fx   <=1.2x (interleaved in one run: the steadier figure)\n", "  interleaved", "", "", "", "", "", median(ovf)
	printf "\n%-26s %12s %8s   (target <= 300 µs)\n", "bridge per OMEMO message", "wall µs", "allocs"
	split("OMEMOIncoming OMEMOOutgoing", bs, " ")
	for (k=1; k<=2; k++) {
		n="Benchmark" bs[k]
		if (!(n in ns)) continue
		printf "%-26s %12.1f %8s", (k==1 ? "XMPP -> Matrix" : "Matrix -> XMPP"), median(ns[n])/1000, al[n]
		if (n in cpu) printf "   cpu %.1f µs", median(cpu[n])
		printf "\n"
	}
	if (wholeIn != "") {
		printf "\n%-26s %12s   (Megolm portal on Dendrite, bot /sync mode; homeserver CPU not counted)\n", "whole bridge process", "cpu µs"
		printf "%-26s %12.0f\n%-26s %12.0f\n", "XMPP -> Matrix", wholeIn, "Matrix -> XMPP", wholeOut
	}
}' "$out"
