#!/usr/bin/env bash
# Compares the whole few-shot job in thaw and in PyTorch, interleaved
# (every round runs each contestant once, in the same order), medians:
#
#   thaw train --model digits-cnn --data digits-5to9 --plan gradual --shots 20 --epochs 10 --seed 1
#
# against trainer/testdata/bench/torch_job.py, the same job in PyTorch.
# CPU time (user + sys) at one thread: thaw's pure-Go build and its
# OpenBLAS build against PyTorch at one thread. Wall time at thaw's default
# threads against PyTorch's better of one and two threads
# (OMP_WAIT_POLICY=PASSIVE, or PyTorch's two pools spin against each other).
#
#   bash trainer/testdata/bench/compare_job.sh [rounds]
#
# It ends with the work each contestant did in the last round (steps run
# per stage, validations), which should agree but for where a stage stops.
#
# Needs libopenblas-dev and Debian's python3-torch (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/../../.."
rounds=${1:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/thaw-go" ./cmd/thaw
go build -tags openblas -o "$tmp/thaw-openblas" ./cmd/thaw
args=(train --model digits-cnn --data digits-5to9 --plan gradual --shots 20 --epochs 10 --seed 1 --json)

# run NAME CMD...: one timed run, "NAME cpu wall" appended to the log.
run() {
	local name=$1
	shift
	rm -rf "$tmp/store"
	/usr/bin/time -f "%U %S %e" -o "$tmp/time" "$@" >"$tmp/out.json" 2>"$tmp/err.txt" || {
		cat "$tmp/err.txt" >&2
		exit 1
	}
	read -r u s e <"$tmp/time"
	echo "$name $(echo "$u + $s" | bc) $e" >>"$tmp/log"
	cp "$tmp/out.json" "$tmp/$name.json"
}

for ((i = 1; i <= rounds; i++)); do
	GOMAXPROCS=1 OPENBLAS_NUM_THREADS=1 run go1 "$tmp/thaw-go" "${args[@]}" --store "$tmp/store"
	GOMAXPROCS=1 OPENBLAS_NUM_THREADS=1 run openblas1 "$tmp/thaw-openblas" "${args[@]}" --store "$tmp/store"
	OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE run torch1 /usr/bin/python3 trainer/testdata/bench/torch_job.py --threads 1
	run go "$tmp/thaw-go" "${args[@]}" --store "$tmp/store"
	run openblas "$tmp/thaw-openblas" "${args[@]}" --store "$tmp/store"
	OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE run torch2 /usr/bin/python3 trainer/testdata/bench/torch_job.py --threads 2
done

/usr/bin/python3 - "$tmp" "$rounds" "$(nproc)" <<'PY'
import json, math, statistics, sys
runs = {}
for line in open(sys.argv[1] + "/log"):
    name, cpu, wall = line.split()
    runs.setdefault(name, []).append((float(cpu), float(wall)))
cpu = {k: statistics.median(c for c, _ in v) for k, v in runs.items()}
wall = {k: statistics.median(w for _, w in v) for k, v in runs.items()}
print(f"whole few-shot job, median of {sys.argv[2]} interleaved rounds, {sys.argv[3]} CPUs; time ratio, lower is better")
print("| thaw build | CPU s, 1 thread | PyTorch 1 thread | ratio | wall s, default threads | PyTorch best of 1, 2 threads | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|")
tw = min(wall["torch1"], wall["torch2"])
for name, one, dflt in (("pure Go", "go1", "go"), ("OpenBLAS", "openblas1", "openblas")):
    print(f"| {name} | {cpu[one]:.2f} | {cpu['torch1']:.2f} | {cpu[one] / cpu['torch1']:.2f}× | {wall[dflt]:.2f} | {tw:.2f} | {wall[dflt] / tw:.2f}× |")
print(f"PyTorch wall: {wall['torch1']:.2f} s at 1 thread, {wall['torch2']:.2f} s at 2; CPU {cpu['torch2']:.2f} s at 2")

# The work each contestant did in the last round: the steps each stage ran
# (* stopped early) and the validation passes. thaw's --json gives the
# stages as run; its validations follow from them and the presets' cadence
# (every max(steps per epoch, ceil(stage/20)) steps and at the stage's end).
print("work in the last round: steps run per stage (* stopped early), validations")
for name in ("go1", "openblas1", "go", "openblas", "torch1", "torch2"):
    d = json.load(open(f"{sys.argv[1]}/{name}.json"))
    runs = [s["end_step"] - s["start_step"] for s in d["stages"]]
    if "validations" in d:
        vals = d["validations"]
    else:
        n, b = d["train_samples"], d["batch_size"]
        spe = -(-n // b) - (n % b == 1 and n > b)
        every = [max(spe, -(-s["steps"] // 20)) for s in d["plan"]["stages"]]
        vals = sum(-(-r // e) for r, e in zip(runs, every))
    steps = " ".join(f"{r}{'*' if s['stopped_early'] else ''}" for r, s in zip(runs, d["stages"]))
    print(f"{name}: {sum(runs)} steps ({steps}), {vals} validations, best step {d['best_step']}, test acc {d['test_acc']:.4f}")
PY
