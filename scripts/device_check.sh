#!/usr/bin/env bash
# The GPU side of scripts/device_check.py, run on the GPU machine with the working tree and .device/ there:
#   mkdir -p results && OUT=results bash scripts/device_check.sh
# Installs the carried pydantic wheels (the machine has no pydantic), then trains/evaluates from .device into
# $OUT (results.json, history.jsonl, int8 model shards). MINUTES (default 5) is the training budget.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .device/whl/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 scripts/device_check.py run --carry .device --out "${OUT:?set OUT to the results folder}" --minutes "${MINUTES:-5}" \
    2>&1 | tee "$OUT/log.txt"
