#!/usr/bin/env bash
# Install size and time of the README's first command, at two commits side by side in one run.
#   bash scripts/bench_install.sh BEFORE_COMMIT [AFTER_COMMIT=HEAD]
# Each commit is cloned fresh into a temporary folder and its own README's first command (fresh venv,
# torch, the project, `odqa demo`) is run and timed there; the output is one line per commit: wall
# seconds, the checkout's size without .git, the venv's size, the shipped models' size, and the demo's
# last line (EM over the demo questions).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for commit in "$1" "${2:-HEAD}"; do
    dir="$work/$(git -C "$repo" rev-parse --short "$commit")"
    git clone -q "$repo" "$dir" && git -C "$dir" checkout -q "$commit"
    setup=$(awk '/^```sh$/{getline; print; exit}' "$dir/README.md")
    start=$(date +%s.%N)
    (cd "$dir" && ODQA_CACHE="$dir/.cache" bash -c "$setup" > "$dir/.setup.log" 2>&1)
    end=$(date +%s.%N)
    models=$(du -sm "$dir/src/odqa/data/models" 2>/dev/null | cut -f1 || echo 0)
    printf '%s  setup+demo %.0f s  checkout %s MB  venv %s MB  shipped models %s MB  demo: %s\n' \
        "$(git -C "$dir" rev-parse --short HEAD)" "$(echo "$end - $start" | bc)" \
        "$(du -sm --exclude=.git --exclude=.venv --exclude=.cache "$dir" | cut -f1)" \
        "$(du -sm "$dir/.venv" | cut -f1)" "${models:-0}" "$(grep -E 'EM' "$dir/.setup.log" | tail -1)"
done
