#!/usr/bin/env bash
# The wheel as a user gets it: built from this checkout, installed (not editable) into a clean virtual
# environment with the pinned CPU torch, then `odqa demo` run from a folder outside the checkout. Passes
# when odqa is imported from the installed wheel and the demo prints span answers of the shipped reader.
#
#   bash scripts/ci_wheel.sh            (PYTHON=python3.11 by default; pip's cache makes a rerun quick)
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd)
python=${PYTHON:-python3.11}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "wheel: building"
"$python" -m venv "$work/venv"
pip="$work/venv/bin/pip"
"$pip" wheel -q --no-deps -w "$work/dist" "$checkout"
wheel=$(ls "$work"/dist/odqa-*.whl)
echo "wheel: $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"
for member in odqa/configs/default.yaml odqa/data/demo_corpus.jsonl odqa/data/models/ko-reader/compact.safetensors \
              odqa/server/static/index.html; do
  "$work/venv/bin/python" -c "import sys, zipfile; sys.exit('$member' not in zipfile.ZipFile(sys.argv[1]).namelist())" \
    "$wheel" || { echo "wheel: $member is missing from the wheel"; exit 1; }
done

echo "wheel: installing torch==2.13.0, then the wheel with [ml] (${SECONDS} s)"
"$pip" install -q --no-compile torch==2.13.0     # no byte-compiling of every module: imports compile what they use
"$pip" install -q --no-compile "$wheel[ml]"

cd "$work"                                  # away from the checkout: nothing of it may be imported
unset PYTHONPATH
where=$("$work/venv/bin/python" -c "import odqa, os; print(os.path.realpath(odqa.__file__))")
case "$where" in
  "$work"/venv/*) echo "wheel: odqa imported from $where (${SECONDS} s)" ;;
  *) echo "wheel: odqa was imported from $where, not from the installed wheel"; exit 1 ;;
esac
ODQA_QUIET=1 "$work/venv/bin/odqa" demo > demo.txt
cat demo.txt
"$work/venv/bin/python" - demo.txt <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
assert "no trained reader" not in text, "odqa demo answered with sentences: the shipped reader did not load"
pairs = re.findall(r"\(gold: (.*)\)\n  A: (.*?)   \[", text)
assert pairs, "odqa demo printed no answer"
right = sum(answer in gold.split(", ") for gold, answer in pairs)
assert right, f"no span answer matches its gold answer: {pairs}"
print(f"wheel: {len(pairs)} span answers printed, {right} of them the gold answer")
EOF
echo "wheel: ok (${SECONDS} s)"
