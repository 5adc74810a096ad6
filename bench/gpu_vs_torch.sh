#!/usr/bin/env bash
# agpt vs PyTorch training throughput on one GPU, in one call on the GPU machine (same card, same
# run): the PyTorch baseline (transformers LlamaForCausalLM, SDPA, bf16 autocast, fused AdamW,
# eager and torch.compile) and bench/train_gpu_bench for the 124M and 1B shapes of the CUDA issue.
# agpt runs four ways per shape: as `agpt train` does (gradient clipping; on Hopper the MLP's
# products fused with SwiGLU, agpt's own kernels), with cuBLAS products only (AGPT_CUDA_PRODUCTS=
# cublas: the separate SwiGLU kernels), without clipping (the PyTorch script does not clip), and
# without clipping with tuned cuBLAS products (AGPT_CUDA_GEMM_TUNE, a fresh file: the warm-up
# steps tune); at 1B also without clipping with the update inside the backward
# (train.update_in_backward; at 124M no product qualifies), and at 1B without clipping with
# train.deterministic = false (cuDNN's atomic attention backward: PyTorch's own work), also with the
# update in the backward.
#
#   here:            bash scripts/gpu-test.sh build      (stages binaries + the baseline script)
#   GPU machine:     bash bench/gpu_vs_torch.sh [agpt precisions, default "bf16"]
# Writes $OUT/torch_anchor.json, $OUT/agpt_bench.jsonl and $OUT/clocks.jsonl (each run's median SM
# clock and power while busy) when OUT is set.
#
# REPEAT=N (N > 1) then runs the 1B shape N more rounds, one run at a time in turn (agpt without
# clipping, with clipping, without clipping with the update in the backward, without clipping with
# train.deterministic = false (PyTorch's own work), the same with the update in the backward;
# compiled PyTorch), and prints each one's median: a card's drift
# during the call then falls on all of them alike ($OUT/rounds.jsonl). SKIP_TABLE=1 runs only those.
set -uo pipefail
cd "$(dirname "$0")/.."
STAGE=.carry/gpu
if [ ! -x "$STAGE/bin/train_gpu_bench" ] && [ -f "$STAGE.tar.gz" ]; then tar xzf "$STAGE.tar.gz" -C .carry; fi
export LD_LIBRARY_PATH="$PWD/$STAGE/lib:${LD_LIBRARY_PATH:-}"
export NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp}
STEPS=${STEPS:-20}
TUNE_FILE=$(mktemp /tmp/agpt-gemm-tune.XXXXXX)
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv,noheader
# The SM clock while each run is busy: an H100 at its power limit runs well below its maximum clock
# (1B step: about 1,600 of 1,980 MHz at 700 W), and cards differ, so every number gets its clock.
CLOCK_LOG=$(mktemp /tmp/agpt-clock.XXXXXX)
clock_start() {
  nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader,nounits -lms 250 > "$CLOCK_LOG" 2>/dev/null &
  CLOCK_PID=$!
}
median() { sort -n | awk '{a[NR] = $1} END {print NR ? a[int((NR + 1) / 2)] : "-"}'; }
clock_stop() {  # label; medians over the samples drawing over 200 W (the run, not its start-up)
  kill "$CLOCK_PID" 2>/dev/null; wait "$CLOCK_PID" 2>/dev/null
  local mhz watts
  mhz=$(awk -F', *' '$2 > 200 {print $1}' "$CLOCK_LOG" | median)
  watts=$(awk -F', *' '$2 > 200 {print $2}' "$CLOCK_LOG" | median)
  echo "   clock while busy: $mhz MHz, $watts W (medians)"
  echo "{\"run\":\"$1\",\"sm_clock_mhz\":\"$mhz\",\"power_w\":\"$watts\"}" >> "$OUT/clocks.jsonl"
}
[ "${SKIP_TABLE:-0}" = 1 ] && SKIP_TORCH=1
echo "== agpt"
[ "${SKIP_TABLE:-0}" = 1 ] || for p in ${1:-bf16}; do
  for shape in 124M 1B; do
    bench() {
      clock_start
      "$STAGE/bin/train_gpu_bench" --shape "$shape" --precision "$p" --steps "$STEPS" --json "$@" | tee -a "$OUT/agpt_bench.jsonl"
      local label="agpt $shape $p"
      [ -n "${AGPT_CUDA_PRODUCTS:-}" ] && label+=" products=$AGPT_CUDA_PRODUCTS"
      [ -n "${AGPT_CUDA_GEMM_TUNE:-}" ] && label+=" tuned"
      [ -n "${AGPT_CUDA_ATTENTION:-}" ] && label+=" attention=$AGPT_CUDA_ATTENTION"
      [ $# -gt 0 ] && label+=" $*"
      clock_stop "$label"
    }
    bench
    AGPT_CUDA_PRODUCTS=cublas bench
    bench --no-clip
    AGPT_CUDA_GEMM_TUNE=$TUNE_FILE bench --no-clip
    [ "$shape" = 1B ] && bench --no-clip --update-in-backward
    # train.deterministic = false: cuDNN's attention backward sums dQ with atomics, as PyTorch's SDPA.
    [ "$shape" = 1B ] && bench --no-clip --nondeterministic
    [ "$shape" = 1B ] && bench --no-clip --nondeterministic --update-in-backward
  done
done
cp "$TUNE_FILE" "$OUT/gemm_tune.txt" 2>/dev/null; rm -f "$TUNE_FILE"
if [ "${SKIP_TORCH:-0}" != 1 ]; then
  echo "== PyTorch"
  clock_start
  PYTHONUNBUFFERED=1 OUT=$OUT python3 "$STAGE/peers/torch_llama_baseline.py"
  clock_stop "PyTorch (all four runs)"
fi
rm -f "$CLOCK_LOG"
if [ "${REPEAT:-1}" -gt 1 ]; then
  echo "== 1B, $REPEAT rounds in turn"
  : > "$OUT/rounds.jsonl"
  for r in $(seq "$REPEAT"); do
    "$STAGE/bin/train_gpu_bench" --shape 1B --precision bf16 --steps "$STEPS" --json --no-clip | tee -a "$OUT/rounds.jsonl"
    "$STAGE/bin/train_gpu_bench" --shape 1B --precision bf16 --steps "$STEPS" --json | tee -a "$OUT/rounds.jsonl"
    "$STAGE/bin/train_gpu_bench" --shape 1B --precision bf16 --steps "$STEPS" --json --no-clip --update-in-backward |
      tee -a "$OUT/rounds.jsonl"
    # PyTorch's own work: no clipping and an attention backward that sums with atomics.
    "$STAGE/bin/train_gpu_bench" --shape 1B --precision bf16 --steps "$STEPS" --json --no-clip --nondeterministic |
      tee -a "$OUT/rounds.jsonl"
    "$STAGE/bin/train_gpu_bench" --shape 1B --precision bf16 --steps "$STEPS" --json --no-clip --nondeterministic \
      --update-in-backward | tee -a "$OUT/rounds.jsonl"
    PYTHONUNBUFFERED=1 python3 bench/torch_llama_one.py "$STAGE/peers" 1B 4 2048 compiled | grep '^{' | tee -a "$OUT/rounds.jsonl"
  done
  python3 - "$OUT/rounds.jsonl" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("engine") != "agpt": who = "PyTorch compiled"
    elif r["clip"]: who = "agpt, clipping"
    else: who = ("agpt, no clipping" + ("" if r.get("deterministic", True) else ", nondeterministic") +
                 (", update in backward" if r["update_in_backward"] else ""))
    runs.setdefault(who, []).append(r)
print("median of %d rounds, 1B (4 x 2,048):" % max(len(v) for v in runs.values()))
for who, rs in runs.items():
    med = lambda k: statistics.median(x[k] for x in rs)
    print("  %-40s %7.2f ms/step  %7.0f tokens/s  MFU %5.2f%%  (runs: %s ms)" % (who, med("ms_per_step"), med("tokens_per_s"),
          100 * med("mfu_989"), ", ".join("%.1f" % x["ms_per_step"] for x in rs)))
PY
fi
