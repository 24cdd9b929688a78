# Shared by the scripts/readme-*.sh recipes; sourced, not run. Each recipe
# runs a README block verbatim (examples/readme's tests check that it is
# there, word for word), captures what it prints, and checks that.
#
# On any exit, also a failed check or a signal, the trap stops every
# background job the recipe started, by PID: SIGTERM, up to 15 s to leave,
# then SIGKILL. It removes the recipe's temporary folders.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=$(mktemp)  # what the README block prints
tmps=("$out")  # removed at exit

cleanup() {
  local rc=$? pids p i alive
  trap - EXIT INT TERM
  pids=$(jobs -p)
  if [ -n "$pids" ]; then
    kill $pids 2>/dev/null || true
    for i in $(seq 150); do
      alive=
      for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
      [ -z "$alive" ] && break
      sleep 0.1
    done
    for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
  fi
  if [ "$rc" != 0 ]; then
    echo "$(basename "$0"): FAILED (exit status $rc); the README block printed:" >&2
    cat "$out" >&2 2>/dev/null || true
  fi
  rm -rf "${tmps[@]}" "${bin:-/nonexistent-readme-bin}"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# need_free_ports fails at once if another program holds one of the
# recipe's fixed ports (which the README names).
need_free_ports() {
  local p
  for p in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$(basename "$0"): 127.0.0.1:$p is taken by another program; stop it first" >&2
      exit 1
    fi
  done
}

# expect_in PATTERN: the README block's output matches the extended regular
# expression PATTERN (grep -E); expect_count N PATTERN: on N lines or in
# N places.
expect_in() {
  if ! grep -Eq -- "$1" "$out"; then
    echo "$(basename "$0"): the output lacks /$1/" >&2
    exit 1
  fi
}
expect_count() {
  local got
  got=$(grep -Eo -- "$2" "$out" | wc -l | tr -d ' ')
  if [ "$got" != "$1" ]; then
    echo "$(basename "$0"): /$2/ found $got times, want $1" >&2
    exit 1
  fi
}
