#!/usr/bin/env bash
# Drives the real thaw binary's Train and Runs screens in tmux at 80x24 and
# 160x48: mnist8-mlp → uci-digits with a plan of long stages loaded on the
# Plan screen and 10 shots per class, started from the keyboard; the
# Train screen shows an evaluation and the first stage's label; n starts
# the second stage early and its label appears; e exports the curves to a
# PNG; c shows the confusion matrix; p pauses; the Runs screen lists the
# run and overlays it; q asks, y quits; thaw runs --json then holds the
# run. Fails when a captured screen lacks the text expected on
# it. Set CAPTURE_DIR to keep the captured screens.
set -euo pipefail
cd "$(dirname "$0")/.."

session="thaw-train-ci-$$"
wait_seconds=90
. .ci/tmux-lib.sh

# Stages long enough that the run is still training when the keys arrive;
# n ends a stage early.
cat >"$work/long.json" <<'JSON'
{"name": "long gradual", "lr": 0.001, "stages": [
  {"train": ["head"], "steps": 20000000},
  {"train": ["top:2"], "steps": 20000000},
  {"train": ["all"], "steps": 20000000}
]}
JSON

for size in 80x24 160x48; do
  w=${size%x*} h=${size#*x}
  store="$work/store-$size"
  out="$work/out-$size"
  mkdir -p "$out"
  tm new-session -d -s "$session" -x "$w" -y "$h" -c "$out" \
    "THAW_STORE=$store NO_COLOR= $work/thaw; echo thaw-exited-\$?; sleep $((wait_seconds + 30))"

  wait_for 1-models "mnist8-mlp" "1 Models"
  keys j j
  wait_for 1-models-mlp "mnist8-mlp"
  keys Enter
  wait_for 2-blocks "Blocks of mnist8-mlp"
  keys Enter
  wait_for 3-plan "preset" "uci-digits"
  keys L
  keys -l "$work/long.json"
  keys Enter
  wait_for 3-plan-loaded "loaded the plan" "20000000 steps"
  keys Down e C-u
  keys -l 10
  keys Enter
  wait_for 3-plan-shots "10 per class" "100 train"
  keys Enter
  # The Train screen: the first stage's label and an evaluation (best).
  wait_for 4-train "head" "stage 1/3" "best val loss" "━ train" "• val" "◆ best" "• source"
  keys n
  wait_for 4-train-stage2 "+fc2" "stage 2/3"
  keys e
  wait_for 4-train-exported "curves written to"
  keys c
  wait_for 4-train-confusion "Confusion matrix" "predicted" "of 359)"
  keys c
  keys p
  wait_for 4-train-paused "paused"
  keys p
  keys 5
  wait_for 5-runs "Runs" "long gradual" "running"
  keys space o
  wait_for 5-runs-overlay "overlay" "aligned by step"
  # esc then q at once would read as alt+q: wait for the list first.
  keys Escape
  wait_for 5-runs-list "enter opens"
  keys q
  wait_for 6-quit "Quit and stop it?"
  keys y
  wait_for 7-exited "thaw-exited-0"
  tm kill-server

  png=$(ls "$out"/thaw-*.png 2>/dev/null | head -1)
  if [ -z "$png" ] || [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" != "89504e470d0a1a0a" ]; then
    echo "FAIL at $size: no PNG exported in $out" >&2
    exit 1
  fi
  runs=$(THAW_STORE=$store "$work/thaw" runs --json)
  if ! grep -q '"model": *"mnist8-mlp"' <<<"$runs"; then
    echo "FAIL at $size: the run is not stored: $runs" >&2
    exit 1
  fi
  echo "ok $size"
done

# ---------------------------------------------------------------------
# One truth about a run (issue 19): cases of their own, at 80x24.

# workbench STORE starts the workbench on STORE in a fresh tmux session.
workbench() {
  tm new-session -d -s "$session" -x 80 -y 24 -c "$work" \
    "THAW_STORE=$1 NO_COLOR= $work/thaw; echo thaw-exited-\$?; sleep $((wait_seconds + 30))"
}

# Deleting the last run on Runs (d, y) leaves the workbench running: it
# used to panic in refilter and exit 0.
case_delete_last_run() {
  local store="$work/store-delete"
  for seed in 1 2; do
    THAW_STORE=$store "$work/thaw" train --model mnist8-mlp --data uci-digits --shots 10 --plan head \
      --epochs 1 --seed $seed --name "delete-me-$seed" >/dev/null 2>&1
  done
  workbench "$store"
  wait_for t1-models "mnist8-mlp"
  keys 5
  wait_for t1-runs "delete-me-1" "delete-me-2"
  keys j j j d
  wait_for t1-confirm "Delete run"
  keys y
  wait_for t1-deleted "deleted" "delete-me-2"
  keys j k
  wait_for t1-alive "delete-me-2" "enter opens"
  keys q
  wait_for t1-exited "thaw-exited-0"
  tm kill-server
  echo "ok delete the last run"
}

# A run whose process is killed (kill -9) is resumed from Runs once its
# heartbeat is stale: Runs shows it interrupted, r resumes it, and Train
# says where it resumed.
case_resume_after_kill9() {
  local store="$work/store-kill"
  THAW_STORE=$store "$work/thaw" train --model mnist8-mlp --data uci-digits --shots 10 \
    --plan "$work/long.json" --name "killed-run" >/dev/null 2>&1 &
  local pid=$! listed
  for _ in $(seq 300); do
    listed=$(THAW_STORE=$store "$work/thaw" runs --json 2>/dev/null || true)
    if grep -q '"steps": *[1-9][0-9][0-9]' <<<"$listed"; then break; fi
    sleep 0.1
  done
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  workbench "$store"
  wait_for t2-models "mnist8-mlp"
  keys 5
  wait_for t2-runs "killed-run" "interrupted"
  # The countdown ends: interrupted, without the question mark.
  for _ in $(seq $((wait_seconds * 10))); do
    if tm capture-pane -t "$session" -p | grep -q "interrupted "; then
      tm capture-pane -t "$session" -p | grep -q "interrupted?" || break
    fi
    sleep 0.1
  done
  keys r
  wait_for t2-resumed "resumed from step" "running"
  keys x
  wait_for t2-stop "Stop the run?"
  keys y
  wait_for t2-stopped "stopped"
  keys q
  wait_for t2-exited "thaw-exited-0"
  tm kill-server
  # Who resumed it is recorded with the run (the output is read whole:
  # grep -q would end the pipe early, which pipefail counts as failure).
  local id shown
  id=$(THAW_STORE=$store "$work/thaw" runs --json | grep -o '"id": *"[^"]*"' | sed -n 1p | cut -d'"' -f4)
  shown=$(THAW_STORE=$store "$work/thaw" show "$id")
  if ! grep -q "resumed by" <<<"$shown"; then
    echo "FAIL: thaw show does not say who resumed the run:" >&2
    printf '%s\n' "$shown" >&2
    exit 1
  fi
  echo "ok resume after kill -9"
}

# b on Train branches a run from a stage boundary: the picker lists the
# stored ends of stages, enter starts the branch, and Runs lists it.
case_branch_from_train() {
  local store="$work/store-branch"
  workbench "$store"
  wait_for t3-models "mnist8-mlp"
  keys j j
  keys Enter
  wait_for t3-blocks "Blocks of mnist8-mlp"
  keys Enter
  wait_for t3-plan "preset" "uci-digits"
  keys L
  keys -l "$work/long.json"
  keys Enter
  wait_for t3-plan-loaded "loaded the plan"
  keys Down e C-u
  keys -l 10
  keys Enter
  wait_for t3-plan-shots "10 per class"
  keys Enter
  wait_for t3-train "stage 1/3" "best val loss"
  keys n
  wait_for t3-stage2 "stage 2/3"
  keys x
  wait_for t3-stop "Stop the run?"
  keys y
  wait_for t3-stopped "stopped"
  keys b
  wait_for t3-picker "Branch from a stage boundary" "end of stage 1"
  keys Enter
  wait_for t3-branched "started" "running"
  keys x
  wait_for t3-stop2 "Stop the run?"
  keys y
  wait_for t3-stopped2 "stopped"
  keys 5
  wait_for t3-runs "⑂"
  keys q
  wait_for t3-exited "thaw-exited-0"
  tm kill-server
  echo "ok branch from Train"
}

# SIGTERM (systemd, a container stop, kill) on the workbench while a run
# trains: thaw says it is stopping the run and how to resume it, exits,
# and the run is stored stopped, not left running.
case_sigterm_workbench() {
  local store="$work/store-sigterm"
  workbench "$store"
  wait_for t4-models "mnist8-mlp"
  keys j j
  keys Enter
  wait_for t4-blocks "Blocks of mnist8-mlp"
  keys Enter
  wait_for t4-plan "preset" "uci-digits"
  keys L
  keys -l "$work/long.json"
  keys Enter
  wait_for t4-plan-loaded "loaded the plan"
  keys Down e C-u
  keys -l 10
  keys Enter
  wait_for t4-plan-shots "10 per class"
  keys Enter
  wait_for t4-train "stage 1/3" "best val loss"
  local shell thaw_pid
  shell=$(tm display-message -p -t "$session" '#{pane_pid}')
  thaw_pid=$(pgrep -P "$shell" -x thaw)
  kill -TERM "$thaw_pid"
  wait_for t4-exited "stopping run" "thaw resume" "thaw-exited-"
  tm kill-server
  local runs
  runs=$(THAW_STORE=$store "$work/thaw" runs --json)
  if ! grep -q '"status": *"stopped"' <<<"$runs"; then
    echo "FAIL: after SIGTERM the workbench's run is not stored stopped: $runs" >&2
    exit 1
  fi
  echo "ok SIGTERM on the workbench"
}

size=80x24 w=80 h=24
case_sigterm_workbench
case_delete_last_run
case_resume_after_kill9
case_branch_from_train
