#!/usr/bin/env bash
# Drives the real thaw binary's workbench in tmux at 80x24 and 160x48:
# open → every key (?) → the message log (!) → Runs, empty → the model card
# → pick digits-cnn → Blocks, f on fc1 → Plan with gradual → LR preview →
# the LR finder's four suggestions → the data picker → the data typed in
# and enter pressed while it loads: the run starts when it is loaded (the
# log says it was queued) → q asks, y
# quits, saying the run is stopping → the run is stored. Every capture but
# the shell's after thaw exits keeps the frame rule (see check_frame).
# Fails when a captured screen lacks the text expected on it. Set
# CAPTURE_DIR to keep the captured screens.
set -euo pipefail
cd "$(dirname "$0")/.."

session="thaw-ci-$$"
wait_seconds=60
. .ci/tmux-lib.sh

for size in 80x24 160x48; do
  w=${size%x*} h=${size#*x}
  store="$work/store-$size"
  tm new-session -d -s "$session" -x "$w" -y "$h" \
    "THAW_STORE=$store NO_COLOR= $work/thaw; echo thaw-exited-\$?; sleep $((wait_seconds + 30))"

  wait_for 1-models "Base models" "digits-cnn" "mnist8-mlp" "1 Models" "5 Runs"
  keys '?'
  wait_for 1-models-keys "every key" "message log" "shift+tab"
  keys '?'
  wait_for 1-models-again "Base models"
  keys '!'
  wait_for 1-models-log "Messages"
  keys Escape
  wait_for 1-models-back "Base models"
  keys 5
  wait_for 5-runs "Runs" "no runs"
  keys 1
  wait_for 1-models-card "Base models" "Architecture"
  keys Enter
  wait_for 2-blocks "Blocks of digits-cnn" "conv1" "head" "trainable 325 of 53,989"
  keys j j f
  wait_for 2-blocks-fc1 "trainable 50,565 of 53,989" "freeze point" "step cost"
  keys Enter
  wait_for 3-plan "preset" "gradual" "LR preview" "━ conv1" "━ head" "train /"
  keys l
  wait_for 3-plan-lrfind "LR finder" "minimum" "steep" "valley" "slide"
  keys Escape
  wait_for 3-plan-again "LR preview"
  keys e
  wait_for 3-plan-picker "built-in tasks" "digits-5to9" "other tasks" "uci-digits"
  # The data typed in and enter pressed again at once, while it loads:
  # the start is queued, not dropped, and the log keeps what it said.
  keys C-u
  keys -l digits-5to9
  keys Enter Enter
  wait_for 4-train "run " "Train"
  keys '!'
  wait_for 4-train-log "Messages" "starting when the data is loaded"
  keys Escape
  wait_for 4-train-again "p pause/resume"
  keys q
  wait_for 5-quit "Quit and stop it?"
  keys y
  wait_for 6-exited "stopping run" "thaw-exited-0"
  tm kill-server

  runs=$(THAW_STORE=$store "$work/thaw" runs --json)
  if ! grep -q '"model": *"digits-cnn"' <<<"$runs"; then
    echo "FAIL at $size: the run is not stored: $runs" >&2
    exit 1
  fi
  echo "ok $size"
done

# The freeze-depth sweep, a block of its own: mnist8-mlp → uci-digits at
# 5 shots → w runs the sweep thaw sweep runs (3 freeze points × 3 seeds)
# and draws its table to the end, ★ on the pick → t takes the pick → e
# writes the figure to the working directory → the Runs screen shows the
# sweep's runs together, named by freeze point and seed.
for size in 80x24 160x48; do
  w=${size%x*} h=${size#*x}
  store="$work/sweep-store-$size"
  figs="$work/sweep-figs-$size"
  mkdir -p "$figs"
  tm new-session -d -s "$session" -x "$w" -y "$h" \
    "cd $figs && THAW_STORE=$store NO_COLOR= $work/thaw; echo thaw-exited-\$?; sleep $((wait_seconds + 30))"

  wait_for sweep-1-models "Base models" "mnist8-mlp"
  keys j j Enter
  wait_for sweep-2-blocks "Blocks of mnist8-mlp" "fc2"
  keys Enter
  wait_for sweep-3-plan "uci-digits" "train /"
  keys j e C-u 5 Enter
  wait_for sweep-3-plan-5shots "5 per class"
  keys 2 w
  wait_for sweep-4-running "Freeze-depth sweep" "of 9 runs"
  wait_for sweep-5-done "Freeze-depth sweep" "done · 9 of 9 runs" "★"
  keys t
  wait_for sweep-6-taken "freeze point taken from the sweep's pick"
  keys e
  wait_for sweep-7-figure "sweep figure written to"
  fig=$(ls "$figs"/thaw-sweep-*.png 2>/dev/null | head -n 1)
  if [ -z "$fig" ] || [ "$(head -c 4 "$fig" | tail -c 3)" != PNG ]; then
    echo "FAIL at $size: e wrote no PNG of the sweep in $figs" >&2
    exit 1
  fi
  keys 5
  wait_for sweep-8-runs "fc1 · seed 3001" "head · seed 3003"
  keys q
  wait_for sweep-9-exited "thaw-exited-0"
  tm kill-server
  echo "ok sweep $size"
done
