#!/usr/bin/env bash
# README command 1: install what is needed and run the pipeline end to end on a bundled default:
# Python 3.11's documentation (Debian package python3.11-doc, ~12 MB of reStructuredText)
#   -> train a byte-level BPE tokenizer -> tokenize into a Megatron indexed dataset -> inspect it.
# Output goes to ${OUT_DIR:-out/demo}.
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

echo "== done: $OUT/tokenizer.json, $OUT/python-docs.bin, $OUT/python-docs.idx"
