#!/usr/bin/env bash
# `agpt train` itself against bench/train_gpu_bench on one GPU, in one call: does the trainer (data
# loading, the gradient norm it always computes, metrics, progress, the watchdog) reach the step
# time of the bare benchmark? Random tokens (bench/random_token_dataset.py, Megatron format) for the
# shapes of the CUDA issue (124M: GPT-2's vocabulary, 16 x 1,024; 1B: Llama 3's, 4 x 2,048), bf16.
#
#   here:            bash scripts/gpu-test.sh build      (stages agpt and the benchmarks)
#   GPU machine:     bash bench/train_gpu_speed.sh [STEPS, default 40]
# Prints each run's median tokens/s over its steps after the first five (agpt train: from
# metrics.jsonl) and writes $OUT/train_speed.jsonl when OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=.carry/gpu
if [ ! -x "$STAGE/bin/agpt" ] && [ -f "$STAGE.tar.gz" ]; then tar xzf "$STAGE.tar.gz" -C .carry; fi
export LD_LIBRARY_PATH="$PWD/$STAGE/lib:${LD_LIBRARY_PATH:-}"
STEPS=${1:-40}
OUT=${OUT:-/tmp}
WORK=$(mktemp -d /tmp/agpt-speed.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
printf '[model]\npreset = "124M"\n' > "$WORK/124M.toml"
printf '[model]\npreset = "1B"\n' > "$WORK/1B.toml"
: > "$OUT/train_speed.jsonl"
for shape in 124M 1B; do
  if [ "$shape" = 124M ]; then vocab=50304 batch=16 seq=1024; else vocab=128256 batch=4 seq=2048; fi
  docs=$(( (STEPS + 2) * batch + 8 ))
  python3 bench/random_token_dataset.py "$WORK/tokens$shape" "$vocab" "$docs" "$((seq + 1))" > /dev/null
  for run in bench train; do
    if [ "$run" = bench ]; then
      "$STAGE/bin/train_gpu_bench" --shape "$shape" --precision bf16 --steps "$STEPS" --json |
        python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(json.dumps({"run":"train_gpu_bench","shape":r["model"],"tokens_per_s":r["tokens_per_s"],"mfu_989":r["mfu_989"]}))'
    else
      "$STAGE/bin/agpt" train "$WORK/$shape.toml" --model.vocab_size "$vocab" --data.dataset "$WORK/tokens$shape" \
        --data.seq_len "$seq" --data.split 100,0,0 --train.micro_batch "$batch" --train.steps "$STEPS" \
        --train.device cuda --train.precision bf16 --train.eval_every 0 --train.checkpoint_every 0 \
        --train.log_every 10 --train.plot false --train.out_dir "$WORK/run$shape" > "$WORK/log$shape" 2>&1 ||
        { cat "$WORK/log$shape"; exit 1; }
      python3 - "$WORK/run$shape/metrics.jsonl" "$shape" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"step"' in l and '"tokens_per_s"' in l]
tps = statistics.median(r["tokens_per_s"] for r in rows[5:])
print(json.dumps({"run": "agpt train", "shape": sys.argv[2], "tokens_per_s": round(tps), "steps_counted": len(rows) - 5}))
PY
    fi
  done | tee -a "$OUT/train_speed.jsonl"
done
