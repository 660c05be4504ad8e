#!/usr/bin/env python3
"""Per-stage latency of pings through a vnet-node pair, from the records a -DVNET_DP_TRACE build
writes (see libvnet/datapath.c): every stage as median / p90 / p99 / max in microseconds.

Usage: uspath_trace.py TRACE_FILE   (the records of both nodes, appended to one file)
"""
import statistics
import sys

recs = {}  # (dir, type, seq) -> (poll, read, flushed) in ns since ping's stamp
for line in open(sys.argv[1]):
    d, t, seq, a, b, c = (int(x) for x in line.split())
    recs.setdefault((d, t, seq), []).append((a, b, c))

# request: node A egress (dir 0, type 8), node B ingress (1, 8); reply: B egress (0, 0),
# A ingress (1, 0). Sequence numbers repeat across ping runs: take the k-th of each.
legs = [(0, 8), (1, 8), (0, 0), (1, 0)]
names = ["A: TAP", "B: UDP", "B: TAP", "A: UDP"]
stages = {}
totals = []
for seq in sorted({k[2] for k in recs}):
    lists = [recs.get((d, t, seq), []) for d, t in legs]
    for i in range(min(len(x) for x in lists)):
        prev = 0
        for leg, lst in zip(names, lists):
            poll, read, done = lst[i]
            for st, v in ((f"{leg} wake (previous stage -> poll)", poll - prev),
                          (f"{leg} poll -> read", read - poll),
                          (f"{leg} read -> handed on", done - read)):
                stages.setdefault(st, []).append(v / 1000)
            prev = done
        totals.append(prev / 1000)


def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


print(f"{len(totals)} round trips; microseconds: median / p90 / p99 / max")
for st, v in stages.items():
    print(f"  {st:44s} {statistics.median(v):8.1f} {q(v, .9):8.1f} {q(v, .99):8.1f} {max(v):9.1f}")
if totals:
    print(f"  {'ping sent -> reply written to A TAP':44s} {statistics.median(totals):8.1f} "
          f"{q(totals, .9):8.1f} {q(totals, .99):8.1f} {max(totals):9.1f}")
