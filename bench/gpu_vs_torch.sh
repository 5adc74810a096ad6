#!/usr/bin/env bash
# agpt vs PyTorch training throughput on one GPU, in one call on the GPU machine (same card, same
# run): the PyTorch baseline (transformers LlamaForCausalLM, SDPA, bf16 autocast, fused AdamW,
# eager and torch.compile) and bench/train_gpu_bench for the 124M and 1B shapes of the CUDA issue.
#
#   here:            bash scripts/gpu-test.sh build      (stages binaries + the baseline script)
#   GPU machine:     bash bench/gpu_vs_torch.sh [agpt precisions, default "fp32 tf32"]
# Writes $OUT/torch_anchor.json and $OUT/agpt_bench.jsonl when OUT is set.
set -uo pipefail
cd "$(dirname "$0")/.."
STAGE=.carry/gpu
if [ ! -x "$STAGE/bin/train_gpu_bench" ] && [ -f "$STAGE.tar.gz" ]; then tar xzf "$STAGE.tar.gz" -C .carry; fi
export LD_LIBRARY_PATH="$PWD/$STAGE/lib:${LD_LIBRARY_PATH:-}"
export NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
echo "== agpt"
for p in ${1:-fp32 tf32}; do
  "$STAGE/bin/train_gpu_bench" --shape 124M --precision "$p" --steps 5 --json | tee -a "$OUT/agpt_bench.jsonl"
  "$STAGE/bin/train_gpu_bench" --shape 1B --precision "$p" --steps 3 --json | tee -a "$OUT/agpt_bench.jsonl"
done
if [ "${SKIP_TORCH:-0}" != 1 ]; then
  echo "== PyTorch"
  PYTHONUNBUFFERED=1 OUT=$OUT python3 "$STAGE/peers/torch_llama_baseline.py"
fi
