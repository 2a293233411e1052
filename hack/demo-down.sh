#!/usr/bin/env bash
# Removes what a `make demo` left behind: its processes and its directory.
set -euo pipefail
dir=${DEMO_DIR:-${TMPDIR:-/tmp}/bitcoin-operator-demo}
if [ -f "$dir/pids" ]; then
  while read -r pid; do
    [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null || true
  done < "$dir/pids"
  sleep 2
  while read -r pid; do
    [ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null || true
  done < "$dir/pids"
fi
rm -rf "$dir"
echo "demo removed ($dir)"
