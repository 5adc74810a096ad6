#!/usr/bin/env bash
# README command 1: install what is needed and run the pipeline end to end on a bundled default:
# Python 3.11's documentation (Debian package python3.11-doc, ~11 MB of reStructuredText)
#   -> extract, quality-filter, de-duplicate and decontaminate it (against the evaluation's questions)
#   -> train a byte-level BPE tokenizer -> tokenize into a Megatron indexed dataset -> inspect it
#   -> plan a sample stream (mixture) with a validation split -> train a tiny Llama on the CPU
#   -> compare its validation loss with the unigram entropy of the data -> generate a sample
#   -> evaluate it on science questions (agpt eval).
# The pipeline after the build takes about 10 minutes on 2 cores (docs/training.md has the numbers).
# Output goes to ${OUT_DIR:-out/demo}; DEMO_STEPS (default 4000) sets the training steps,
# DEMO_PROMPT the prompt of the sample.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --demo
BUILD_DIR=${BUILD_DIR:-build} scripts/build.sh
AGPT="${BUILD_DIR:-build}/agpt"
CORPUS=/usr/share/doc/python3.11/html/_sources
OUT=${OUT_DIR:-out/demo}
STEPS=${DEMO_STEPS:-4000}
PROMPT=${DEMO_PROMPT:-"The list type"}
mkdir -p "$OUT"

# Wall time of each stage, printed as a table at the end.
timings=()
lap_start=$(date +%s%N)
lap() {
  local now
  now=$(date +%s%N)
  timings+=("$(printf '  %-34s %7.1f s' "$1" "$(( (now - lap_start) / 1000000 ))e-3")")
  lap_start=$now
}

echo "== 0. curate $CORPUS: extract, filter, de-duplicate, decontaminate"
# Each stage writes Dolma JSONL and a report (counts by reason) into $OUT/curate/.
mkdir -p "$OUT/curate"
"$AGPT" data extract --input "$CORPUS" --format text --output "$OUT/curate/extracted.jsonl.zst" \
  --report "$OUT/curate/extract.json"
# Gopher's web-text thresholds would drop a third of a reference manual: examples/filter-docs.toml.
"$AGPT" data filter --input "$OUT/curate/extracted.jsonl.zst" --config examples/filter-docs.toml \
  --output "$OUT/curate/filtered.jsonl.zst" --attributes "$OUT/curate/attributes" --report "$OUT/curate/filter.json"
"$AGPT" data dedup --input "$OUT/curate/filtered.jsonl.zst" --output "$OUT/curate/dedup.jsonl.zst" \
  --report "$OUT/curate/dedup.json"
# The evaluation's science questions must not be in the training text (13-gram overlaps cut out).
"$AGPT" data decontaminate --input "$OUT/curate/dedup.jsonl.zst" --benchmarks examples/tasks/science/*/*.jsonl \
  --output "$OUT/curate/clean.jsonl.zst" --report "$OUT/curate/decontaminate.json"
DOCS="$OUT/curate/clean.jsonl.zst"
lap "0. curate"

echo "== 1. train a tokenizer on the curated documents"
"$AGPT" tokenizer train --input "$DOCS" --vocab-size 1024 \
  --special-tokens "<|endoftext|>" --output "$OUT/tokenizer.json"
lap "1. tokenizer"

echo "== 2. tokenize the corpus into a Megatron indexed dataset"
"$AGPT" data tokenize -t "$OUT/tokenizer.json" --input "$DOCS" --output-prefix "$OUT/python-docs"
lap "2. tokenize"

echo "== 3. inspect the dataset"
"$AGPT" data inspect "$OUT/python-docs" -t "$OUT/tokenizer.json" --docs 2 | tee "$OUT/inspect.txt"
# The loss of a model that knows only how often each token occurs: what training has to beat.
ENTROPY=$(sed -n 's/^unigram entropy *\([0-9.]*\) nats.*/\1/p' "$OUT/inspect.txt")
[[ -n "$ENTROPY" ]] || { echo "demo: no unigram entropy in $OUT/inspect.txt" >&2; exit 1; }
lap "3. inspect"

echo "== 4. plan the sample stream: 256-token samples, 2% of documents held out for validation"
echo "1.0 $(realpath "$OUT")/python-docs python-docs" > "$OUT/list.txt"
# One step takes micro_batch x grad_accum samples (examples/tiny.toml: 2).
"$AGPT" data mix --list "$OUT/list.txt" --seq-len 256 --samples $((STEPS * 2)) --valid-samples 256 \
  --split 98,2,0 --seed 1234 --out "$OUT/mix"
lap "4. mixture"

echo "== 5. train a tiny Llama (1.0M parameters) on the CPU for $STEPS steps"
rm -rf "$OUT/tiny"  # a new run each time (the trainer refuses a directory holding checkpoints)
"$AGPT" train examples/tiny.toml --data.mixture "$OUT/mix" --data.tokenizer "$OUT/tokenizer.json" \
  --train.out_dir "$OUT/tiny" --train.steps "$STEPS" --train.warmup $((STEPS / 20))
lap "5. train"

echo "== 6. validation loss vs the unigram entropy of the data"
# The last lines of metrics.jsonl: the final validation, and the step lines before it.
METRICS="$OUT/tiny/metrics.jsonl"
json_field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p"; }
VAL=$(grep '"val_loss"' "$METRICS" | tail -1)
STEP=$(grep '"tokens_per_s"' "$METRICS" | tail -1)
awk -v h="$ENTROPY" -v v="$(json_field val_loss <<<"$VAL")" -v step="$(json_field step <<<"$VAL")" \
    -v tokens="$(json_field tokens <<<"$STEP")" -v secs="$(json_field elapsed <<<"$STEP")" 'BEGIN {
  printf "  %-30s %6.3f nats/token (perplexity %5.1f): knowing only how often each token occurs\n", "unigram entropy of the data", h, exp(h)
  printf "  %-30s %6.3f nats/token (perplexity %5.1f): the model on held-out documents\n", "validation loss at step " step, v, exp(v)
  printf "  the validation loss is %.0f%% of the unigram entropy", 100 * v / h
  if (v < 0.75 * h) printf " (perplexity %.0fx lower): the model has learned far more than token frequencies\n", exp(h - v)
  else printf ": not far below it yet; train longer (DEMO_STEPS)\n"
  printf "  trained on %d tokens in %.0f s (%.0f tokens/s)\n", tokens, secs, tokens / secs
}'
lap "6. compare"

echo "== 7. generate a sample from the final checkpoint (prompt \"$PROMPT\", seed 1234)"
# The prompt, then the model's continuation as it streams; both kept in sample.txt.
{ printf '%s' "$PROMPT"; "$AGPT" generate --model "$OUT/tiny" --prompt "$PROMPT" --max-tokens 120 --seed 1234 \
    2>"$OUT/generate.log"; } | tee "$OUT/sample.txt" || { cat "$OUT/generate.log" >&2; exit 1; }
printf '\n--\n'
cat "$OUT/generate.log"
lap "7. generate"

echo "== 8. evaluate: science multiple choice and short answers at 0, 1 and 5 shots, WordNet gloss perplexity"
# A 1M-parameter model trained on Python's documentation answers science questions near chance
# (0.25 for four choices); the report shows how such numbers, their spread and the speed are measured.
"$AGPT" eval --model "$OUT/tiny" --tasks science,wordnet_glosses --shots 0,1,5 --out "$OUT/eval" | tee "$OUT/eval.txt"
lap "8. evaluate"

echo "== done; wall time per stage:"
printf '%s\n' "${timings[@]}"
cat <<EOF
outputs in $OUT:
  curate/                     each curation stage's documents (Dolma JSONL) and report; filter attributes
  tokenizer.json              the BPE tokenizer (Hugging Face format)
  python-docs.{bin,idx}       the token dataset (Megatron indexed dataset); inspect.txt: its summary
  mix/mixture.json            the planned sample stream with its validation split
  tiny/metrics.jsonl          one line per step (loss, lr, gradient norm, tokens/s) and each validation
  tiny/plots/overview.png     the curves (loss, lr, gradient norm, tokens/s); each also alone, PNG and SVG
  tiny/checkpoints/           Hugging Face layout (config.json, model.safetensors, tokenizer.json)
  sample.txt                  the generated sample
  eval/                       results.json, report.md/.html, accuracy_vs_shots.png, reliability.png
more text: $AGPT generate --model $OUT/tiny --prompt '...'
EOF
