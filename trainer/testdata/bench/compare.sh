#!/usr/bin/env bash
# Compares thaw's training-step throughput with PyTorch's in one run: the
# same networks, batch sizes, update (SGD with momentum) and thread count,
# for thaw's default build (its float32 kernel path is named in the
# output), its OpenBLAS build and PyTorch in float32. The three are measured
# interleaved, A B C A B C …, and each figure is the median of the rounds,
# so a load swing on a shared machine hits all three alike. It also reports
# the default build's float32 GEMM at 128×784×256 in GFLOP/s.
#
#   bash trainer/testdata/bench/compare.sh [threads] [rounds]
#
# Needs libopenblas-dev and Debian's python3-torch (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/../../.."
threads=${1:-1}
rounds=${2:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go test -c -o "$tmp/thaw" ./trainer/
go test -tags openblas -c -o "$tmp/thaw-openblas" ./trainer/
go test -c -o "$tmp/kernel" ./trainer/internal/kernel/
for r in $(seq "$rounds"); do
  "$tmp/thaw" -test.run XXX -test.bench TrainStep -test.cpu "$threads" -test.benchtime 1s >>"$tmp/default.txt"
  # One torch thread with OpenBLAS at the same count is PyTorch's best
  # setting on this kind of machine (two thread pools otherwise fight).
  OMP_NUM_THREADS=$threads /usr/bin/python3 trainer/testdata/bench/torch_bench.py --threads "$threads" --seconds 1 >>"$tmp/torch.jsonl"
  "$tmp/thaw-openblas" -test.run XXX -test.bench TrainStep -test.cpu "$threads" -test.benchtime 1s >>"$tmp/openblas.txt"
  "$tmp/kernel" -test.run XXX -test.bench 'Sgemm/128x784x256/' -test.cpu 1 -test.benchtime 0.5s >>"$tmp/gemm.txt"
done

/usr/bin/python3 - "$tmp" "$threads" "$rounds" <<'PY'
import json, re, statistics, sys
tmp, threads, rounds = sys.argv[1], sys.argv[2], sys.argv[3]
def go(path):
    rates = {}
    for line in open(path):
        m = re.match(r"BenchmarkTrainStep/(\w+)/([\w-]+)(?:-\d+)?\s.*?([\d.]+) samples/s", line)
        if m:
            rates.setdefault((m[1], m[2]), []).append(float(m[3]))
    return {k: statistics.median(v) for k, v in rates.items()}
g, o = go(f"{tmp}/default.txt"), go(f"{tmp}/openblas.txt")
runs = [json.loads(l) for l in open(f"{tmp}/torch.jsonl")]
names = {("mlp", "all"): "mlp", ("mlp", "first-frozen"): "mlp_frozen",
         ("cnn", "all"): "cnn", ("cnn", "first-frozen"): "cnn_frozen"}
torch = {k: statistics.median(r[v] for r in runs) for k, v in names.items()}
gemm, path = {}, "?"
for line in open(f"{tmp}/gemm.txt"):
    m = re.match(r"BenchmarkSgemm/128x784x256/([\w-]+?)(?:-\d+)?\s.*?([\d.]+) GFLOP/s", line)
    if m:
        gemm.setdefault(m[1], []).append(float(m[2]))
kernel = next((k for k in gemm if k != "gonum"), "?")
print(f"threads: {threads}; PyTorch {runs[0]['torch']} float32; samples/s, median of {rounds} interleaved rounds")
print(f"| network | frozen | PyTorch | thaw default ({kernel}) | ratio | thaw OpenBLAS | ratio |")
print(f"|---|---|---:|---:|---:|---:|---:|")
for key in [("mlp", "all"), ("mlp", "first-frozen"), ("cnn", "all"), ("cnn", "first-frozen")]:
    p = torch[key]
    print(f"| {key[0]} | {'first block' if key[1] != 'all' else 'none'} | {p:,.0f} | {g[key]:,.0f} | {g[key]/p:.2f}× | {o[key]:,.0f} | {o[key]/p:.2f}× |")
for name, r in (("default", g), ("OpenBLAS", o), ("PyTorch", torch)):
    for net in ("mlp", "cnn"):
        print(f"freezing the first block, {net}, {name}: {r[(net, 'first-frozen')] / r[(net, 'all')]:.2f}× the unfrozen samples/s")
for k, v in gemm.items():
    print(f"float32 GEMM 128×784×256, one thread, {k}: {statistics.median(v):.1f} GFLOP/s (median of {len(v)})")
PY
