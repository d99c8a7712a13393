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
    "THAW_STORE=$store NO_COLOR= $work/thaw; echo thaw-exited-\$?; sleep 30"

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
