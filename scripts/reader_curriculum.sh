#!/usr/bin/env bash
# The reader's cross-lingual curriculum, stage after stage, resumable: Japanese (JaQuAD), then Chinese and
# English (DRCD, CMRC 2018, XQuAD), then the Korean training files. Every stage starts from the previous
# stage's best checkpoint, chosen by F1 on questions held out of the Korean *training* files
# (scripts/split_holdout.py); no dev file is read. Run it again to continue: a finished stage (OUT/STAGE/done.json)
# is skipped, an interrupted one resumes from OUT/STAGE/last.
#
#   bash scripts/reader_curriculum.sh runs/curriculum            # the curriculum
#   ARM=korean-only bash scripts/reader_curriculum.sh runs/ko    # the same Korean stage from the backbone alone
#
# DATA (default ../shared/data) holds korquad1/, klue_mrc/ and crosslingual/.
# Time: about 6.5 s an optimizer step of 16 windows on two idle CPU cores (ja 1,200 steps about 2.2 h, zh-en
# 400 about 45 min, ko 1,000 about 1.8 h, plus an evaluation on the held-out questions every --eval-every
# steps); `OUT/STAGE/last` is saved every 50 steps, so an interrupted stage loses at most 50.
set -euo pipefail
OUT=${1:?usage: reader_curriculum.sh OUT}
DATA=${DATA:-../shared/data}
ODQA=${ODQA:-.venv/bin/odqa}
ARM=${ARM:-curriculum}
HOLD=$OUT/holdout
XL=$DATA/crosslingual
mkdir -p "$OUT"

if [ ! -f "$HOLD/held.json" ]; then
  python scripts/split_holdout.py "$DATA/korquad1/korquad1_train.json" "$DATA/klue_mrc/klue_mrc_train.json" \
    --percent 10 --out "$HOLD" > "$OUT/holdout.json"
fi

COMMON=(--head cnn --max-length 256 --stride 64 --negative-ratio 0.05 --batch-size 16 --seed 42
        --dev "$HOLD/held.json" --eval-limit 0 --save-every 50 --json --quiet)

stage() {   # stage NAME INIT ARGS...: run (or resume, or skip) one stage
  local name=$1 init=$2; shift 2
  local dir=$OUT/$name
  if [ -f "$dir/done.json" ]; then echo "stage $name: done"; return; fi
  local start=(--backbone offline:multilingual-e5-small)
  [ "$init" != "-" ] && start=(--init "$init")
  local resume=()
  [ -d "$dir/last" ] && resume=(--resume)
  echo "stage $name: $(date -u +%FT%TZ) ${resume[*]:-start}"
  "$ODQA" train reader "${start[@]}" "${COMMON[@]}" "$@" --out "$dir" "${resume[@]}" > "$dir.result.tmp"
  mv "$dir.result.tmp" "$dir/done.json"
  echo "stage $name: $(date -u +%FT%TZ) finished"
}

KO=(--train "$HOLD/korquad1_train.fit.json" --train "$HOLD/klue_mrc_train.fit.json")
if [ "$ARM" = korean-only ]; then
  stage ko - "${KO[@]}" --lr 1e-4 --max-steps 1000 --eval-every 100
else
  stage ja - --train "$XL/jaquad_train.json" --lr 1e-4 --max-steps 1200 --eval-every 300
  stage zh-en "$OUT/ja/best" --train "$XL/drcd_dev.json" --train "$XL/drcd_test.json" \
    --train "$XL/cmrc2018_dev.json" --train "$XL/cmrc2018_trial.json" --train "$XL/xquad_zh.json" \
    --train "$XL/xquad_en.json" --lr 5e-5 --max-steps 400 --eval-every 200
  stage ko "$OUT/zh-en/best" "${KO[@]}" --lr 5e-5 --max-steps 1000 --eval-every 100
fi
