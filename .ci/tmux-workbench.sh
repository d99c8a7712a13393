#!/usr/bin/env bash
# Drives the real thaw binary's workbench in tmux at 80x24 and 160x48:
# open → pick digits-cnn → Blocks, f on fc1 → Plan with gradual → LR
# preview → enter starts the run → q asks, y quits → the run is stored.
# Fails when a captured screen lacks the text expected on it. Set
# CAPTURE_DIR to keep the captured screens.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v tmux >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends tmux
fi

work=$(mktemp -d)
session="thaw-ci-$$"
cleanup() {
  tmux kill-session -t "$session" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/thaw" ./cmd/thaw
captures=${CAPTURE_DIR:-$work/captures}
mkdir -p "$captures"

# wait_for NAME TEXT...: polls the pane until it shows every TEXT, then
# saves it as NAME; fails after 60 s with the last screen.
wait_for() {
  local name=$1; shift
  local screen
  for _ in $(seq 600); do
    screen=$(tmux capture-pane -t "$session" -p)
    local ok=1
    for want in "$@"; do
      if ! grep -qF -- "$want" <<<"$screen"; then ok=0; break; fi
    done
    if [ $ok = 1 ]; then
      printf '%s\n' "$screen" >"$captures/$size-$name.txt"
      return 0
    fi
    sleep 0.1
  done
  echo "FAIL at $size: screen '$name' lacks one of: $*" >&2
  printf '%s\n' "$screen" >&2
  exit 1
}

keys() { tmux send-keys -t "$session" "$@"; }

for size in 80x24 160x48; do
  w=${size%x*} h=${size#*x}
  store="$work/store-$size"
  tmux new-session -d -s "$session" -x "$w" -y "$h" \
    "THAW_STORE=$store NO_COLOR= $work/thaw; echo thaw-exited-\$?; sleep 30"

  wait_for 1-models "Base models" "digits-cnn" "mnist8-mlp" "1 Models" "5 Runs"
  keys Enter
  wait_for 2-blocks "Blocks of digits-cnn" "conv1" "head" "trainable 325 of 53,989"
  keys j j f
  wait_for 2-blocks-fc1 "trainable 50,565 of 53,989" "freeze point" "step cost"
  keys Enter
  wait_for 3-plan "preset" "gradual" "LR preview" "━ conv1" "━ head" "train /"
  keys Enter
  wait_for 4-train "run " "Train"
  keys q
  wait_for 5-quit "Quit and stop it?"
  keys y
  wait_for 6-exited "thaw-exited-0"
  tmux kill-session -t "$session"

  runs=$(THAW_STORE=$store "$work/thaw" runs --json)
  if ! grep -q '"model": *"digits-cnn"' <<<"$runs"; then
    echo "FAIL at $size: the run is not stored: $runs" >&2
    exit 1
  fi
  echo "ok $size"
done
