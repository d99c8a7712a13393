#!/usr/bin/env bash
# Compares thaw's training-step throughput with PyTorch's in one run: the
# same networks, batch sizes, update (SGD with momentum) and thread count,
# for thaw's pure-Go build, its OpenBLAS build and PyTorch in float32.
#
#   bash trainer/testdata/bench/compare.sh [threads]
#
# Needs libopenblas-dev and Debian's python3-torch (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/../../.."
threads=${1:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go test -run XXX -bench TrainStep -cpu "$threads" -benchtime 3s -count 3 ./trainer/ >"$tmp/gonum.txt"
go test -tags openblas -run XXX -bench TrainStep -cpu "$threads" -benchtime 3s -count 3 ./trainer/ >"$tmp/openblas.txt"
# One torch thread with OpenBLAS at the same count is PyTorch's best
# setting on this kind of machine (two thread pools otherwise fight).
OMP_NUM_THREADS=$threads /usr/bin/python3 trainer/testdata/bench/torch_bench.py --threads "$threads" >"$tmp/torch.json"

/usr/bin/python3 - "$tmp" "$threads" <<'PY'
import json, re, statistics, sys
tmp, threads = sys.argv[1], sys.argv[2]
def go(path):
    rates = {}
    for line in open(path):
        m = re.match(r"BenchmarkTrainStep/(\w+)/([\w-]+)(?:-\d+)?\s.*?([\d.]+) samples/s", line)
        if m:
            rates.setdefault((m[1], m[2]), []).append(float(m[3]))
    return {k: statistics.median(v) for k, v in rates.items()}
g, o = go(f"{tmp}/gonum.txt"), go(f"{tmp}/openblas.txt")
t = json.load(open(f"{tmp}/torch.json"))
torch = {("mlp", "all"): t["mlp"], ("mlp", "first-frozen"): t["mlp_frozen"],
         ("cnn", "all"): t["cnn"], ("cnn", "first-frozen"): t["cnn_frozen"]}
print(f"threads: {threads}; PyTorch {t['torch']} float32; samples/s (median of 3)")
print(f"| network | frozen | PyTorch | thaw pure Go | ratio | thaw OpenBLAS | ratio |")
print(f"|---|---|---:|---:|---:|---:|---:|")
for key in [("mlp", "all"), ("mlp", "first-frozen"), ("cnn", "all"), ("cnn", "first-frozen")]:
    p = torch[key]
    print(f"| {key[0]} | {'first block' if key[1] != 'all' else 'none'} | {p:,.0f} | {g[key]:,.0f} | {g[key]/p:.2f}× | {o[key]:,.0f} | {o[key]/p:.2f}× |")
for name, r in (("pure Go", g), ("OpenBLAS", o), ("PyTorch", torch)):
    for net in ("mlp", "cnn"):
        print(f"freezing the first block, {net}, {name}: {r[(net, 'first-frozen')] / r[(net, 'all')]:.2f}× the unfrozen samples/s")
PY
