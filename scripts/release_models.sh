#!/usr/bin/env bash
# Release recipe of the shipped models (one command: bash scripts/release_models.sh [DATA_DIR]).
# Trains the default reader on the two Korean training files, learns its particle rules and continues it for
# 100 steps with JaQuAD mixed in; trains the default RE model, packs both into src/odqa/data/models/ and
# evaluates the packed models next to the full-precision checkpoints they came from. Every step resumes (--resume) after an interruption.
# Reader: CNN span head (led the linear head at 200 steps; BENCHMARKS.md, "Span heads"), recipe of the
# "Reader" section: 256-token windows, stride 64, 5 % no-answer windows, batch 16, lr 1e-4, 1.6 epochs.
set -euo pipefail
DATA=${1:-../shared/data}
RUNS=${RUNS:-runs}
MODELS=src/odqa/data/models
resume() { [ -d "$1/last" ] && echo --resume || true; }

odqa train reader --train "$DATA/korquad1/korquad1_train.json" --train "$DATA/klue_mrc/klue_mrc_train.json" \
    --dev "$DATA/korquad1/korquad1_dev.json" --out "$RUNS/reader-cnn-full" --head cnn --max-length 256 --stride 64 \
    --negative-ratio 0.05 --batch-size 16 --lr 1e-4 --epochs 1.6 --eval-every 100 --eval-limit 150 --time-budget 140 \
    $(resume "$RUNS/reader-cnn-full") --json
odqa train particles --reader "$RUNS/reader-cnn-full/best" --train "$DATA/korquad1/korquad1_train.json" --limit 1000 --json
odqa models pack "$RUNS/reader-cnn-full/best" --out "$MODELS/ko-reader" --precision int8 --json
# stage 2 (docs/benchmarks/reading.md, "Multi-passage reader training", arm (e)): 100 steps from that packed reader
# with JaQuAD's 31,748 Japanese questions mixed into the two Korean files (lr 3e-5), its particle rules kept,
# packed in int8 with a scale per 64 values (per-row int8 lost 1.48 EM on this checkpoint)
odqa train reader --init ko-reader --train "$DATA/korquad1/korquad1_train.json" \
    --train "$DATA/klue_mrc/klue_mrc_train.json" --train "$DATA/crosslingual/jaquad_train.json" \
    --out "$RUNS/reader-ja-mixed" --max-length 256 --stride 64 --negative-ratio 0.05 --batch-size 16 --lr 3e-5 \
    --max-steps 100 --seed 42 $(resume "$RUNS/reader-ja-mixed") --json
cp "$MODELS/ko-reader/particles.json" "$RUNS/reader-ja-mixed/last/"
odqa models pack "$RUNS/reader-ja-mixed/last" --out "$MODELS/ko-reader" --precision int8g --json

odqa re train --train "$DATA/klue_re/klue-re-train-subset.json" --dev "$DATA/klue_re/klue-re-dev-public.json" \
    --out "$RUNS/re-cw05" --epochs 3 --set class_weight=0.5 --time-budget 60 $(resume "$RUNS/re-cw05") --json
odqa models pack "$RUNS/re-cw05/best" --out "$MODELS/ko-re" --precision int8 --json

# figures: full precision next to the packed model (closed domain, all 812 dev questions)
odqa evaluate --closed --reader "$RUNS/reader-ja-mixed/last" --particles auto \
    --questions "$DATA/korquad1/korquad1_dev.json" --json > "$RUNS/eval-reader-full.json"
odqa evaluate --closed --reader ko-reader --questions "$DATA/korquad1/korquad1_dev.json" --json > "$RUNS/eval-reader-packed.json"
odqa evaluate --closed --reader ko-reader --particles none --questions "$DATA/korquad1/korquad1_dev.json" --json \
    > "$RUNS/eval-reader-packed-plain.json"
odqa re evaluate --model "$RUNS/re-cw05/best" --data "$DATA/klue_re/klue-re-dev-public.json" --json > "$RUNS/eval-re-full.json"
odqa re evaluate --model ko-re --data "$DATA/klue_re/klue-re-dev-public.json" --json > "$RUNS/eval-re-packed.json"

# last, once card.json and MODEL_CARD.md are written: record every file's size and checksum (checked at load)
python -c "import sys; from odqa.checksums import write_checksums; [write_checksums(f) for f in sys.argv[1:]]" \
    "$MODELS/ko-reader" "$MODELS/ko-re"
