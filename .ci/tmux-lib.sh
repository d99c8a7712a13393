# Shared by the scripts that drive the real thaw binary in tmux: sourced
# with $session (the tmux session's name) and $wait_seconds (how long
# wait_for polls) set. Installs tmux when it is missing, builds thaw into
# $work (removed on exit with the session), and defines wait_for and keys.
# Set CAPTURE_DIR to keep the captured screens.

if ! command -v tmux >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends tmux
fi

# tm runs tmux on a server of the script's own for each terminal size
# ($size), so that neither another tmux user nor the previous size's
# server shutting down can take the session away.
tm() { tmux -L "$session-${size:-none}" "$@"; }

work=$(mktemp -d)
cleanup() {
  for size in 80x24 160x48; do tm kill-server 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/thaw" ./cmd/thaw
captures=${CAPTURE_DIR:-$work/captures}
mkdir -p "$captures"

# check_frame NAME SCREEN: the frame rule on a capture of the workbench: the
# last line holds `?` and `quit` (the help bar ends with "? keys · q
# quit" at every size) and no line is wider than the terminal ($w).
check_frame() {
  local name=$1 screen=$2
  local last
  last=$(sed -n "${h:-24}p" <<<"$screen")
  if [[ "$last" != *"?"* || "$last" != *quit* ]]; then
    echo "FAIL at $size: screen '$name': the last line lacks '?' or 'quit': '$last'" >&2
    printf '%s\n' "$screen" >&2
    exit 1
  fi
  local line
  while IFS= read -r line; do
    if [ "${#line}" -gt "${w:-80}" ]; then
      echo "FAIL at $size: screen '$name': a line is ${#line} wide, more than $w: '$line'" >&2
      exit 1
    fi
  done <<<"$screen"
}

# wait_for NAME TEXT...: polls the pane until it shows every TEXT, then
# saves it as $size-NAME and checks the frame rule on it (but on the shell
# after thaw exited); fails after $wait_seconds with the last screen.
wait_for() {
  local name=$1; shift
  local screen="" next
  for _ in $(seq $((wait_seconds * 10))); do
    # The pane's command outlives the wait (thaw, then a sleep longer
    # than it), so a server gone means thaw's pane ended early: say so,
    # with the last screen seen, not only tmux's "no server running".
    if ! next=$(tm capture-pane -t "$session" -p); then
      echo "FAIL at $size: screen '$name': the tmux session ended while waiting for: $*; the last screen:" >&2
      printf '%s\n' "$screen" >&2
      exit 1
    fi
    screen=$next
    local ok=1
    for want in "$@"; do
      if ! grep -qF -- "$want" <<<"$screen"; then ok=0; break; fi
    done
    if [ $ok = 1 ]; then
      printf '%s\n' "$screen" >"$captures/$size-$name.txt"
      if ! grep -qF thaw-exited <<<"$screen"; then
        LC_ALL=C.UTF-8 check_frame "$name" "$screen"
      fi
      return 0
    fi
    sleep 0.1
  done
  echo "FAIL at $size: screen '$name' lacks one of: $*" >&2
  printf '%s\n' "$screen" >&2
  exit 1
}

keys() { tm send-keys -t "$session" "$@"; }
