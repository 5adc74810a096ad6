#!/usr/bin/env bash
# README command 1: install what is needed and run the pipeline end to end on a bundled default:
# Python 3.11's documentation (Debian package python3.11-doc, ~12 MB of reStructuredText)
#   -> train a byte-level BPE tokenizer -> tokenize into a Megatron indexed dataset -> inspect it
#   -> plan a sample stream (mixture) with a validation split -> train a tiny Llama on the CPU.
# Output goes to ${OUT_DIR:-out/demo}; DEMO_STEPS (default 150) sets the training steps.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --demo
BUILD_DIR=${BUILD_DIR:-build} scripts/build.sh
AGPT="${BUILD_DIR:-build}/agpt"
CORPUS=/usr/share/doc/python3.11/html/_sources
OUT=${OUT_DIR:-out/demo}
mkdir -p "$OUT"

echo "== 1. train a tokenizer on $CORPUS"
"$AGPT" tokenizer train --input "$CORPUS" --vocab-size 8192 \
  --special-tokens "<|endoftext|>" --output "$OUT/tokenizer.json"

echo "== 2. tokenize the corpus into a Megatron indexed dataset"
"$AGPT" data tokenize -t "$OUT/tokenizer.json" --input "$CORPUS" --output-prefix "$OUT/python-docs"

echo "== 3. inspect the dataset"
"$AGPT" data inspect "$OUT/python-docs" -t "$OUT/tokenizer.json" --docs 2

echo "== 4. plan the sample stream: 256-token samples, 2% of documents held out for validation"
echo "1.0 $(realpath "$OUT")/python-docs python-docs" > "$OUT/list.txt"
"$AGPT" data mix --list "$OUT/list.txt" --seq-len 256 --samples 20000 --valid-samples 256 \
  --split 98,2,0 --seed 1234 --out "$OUT/mix"

echo "== 5. train a tiny Llama (1.9M parameters) on the CPU"
"$AGPT" train examples/tiny.toml --data.mixture "$OUT/mix" --data.tokenizer "$OUT/tokenizer.json" \
  --train.out_dir "$OUT/tiny" --train.steps "${DEMO_STEPS:-150}" --train.warmup 20 \
  --train.eval_every 50 --train.checkpoint_every 50 --train.log_every 10

echo "== done: $OUT/tokenizer.json, $OUT/python-docs.{bin,idx}, $OUT/mix/mixture.json,"
echo "   $OUT/tiny (metrics.jsonl, checkpoints/ in Hugging Face layout)"
