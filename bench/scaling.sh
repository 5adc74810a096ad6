#!/usr/bin/env bash
# The multi-GPU scaling measurements in one call on the GPU machine (every GPU of one host):
#   1. bench/train_dp_bench, 1B shape (B 4 x 2,048 per rank, bf16), the distributed optimizer with
#      both overlaps, on 1, 2, 4 and 8 ranks (as many as there are GPUs), then tensor parallel 2 x
#      data parallel N/2 on all N GPUs; a table of tokens/s per GPU, efficiency against one GPU,
#      MFU, peak memory and the exposed share of the step (reduction, update and gathers that the
#      compute does not hide);
#      With BF16_PARAMS=1 the data-parallel and TP x DP runs again with --bf16-params
#      (train.param_dtype = "bf16": bf16 weights, fp32 master weights sharded); with BENCH_7B=1,
#      the 7B shape (B 1 x 4,096, recomputation) on all GPUs, data parallel with --bf16-params;
#   2. with RUN_7B=1, `agpt train examples/llama-7b.toml` on all N GPUs for STEPS_7B steps (data
#      parallel; tensor parallel 2 where a card has less than 100 GiB, as the 7B shape needs) on
#      the mixture DATA_7B (TP_7B overrides the tensor-parallel size), and its median tokens/s and
#      MFU from metrics.jsonl. CONFIG_7B and
#      EXTRA_7B (more `--section.key value` arguments) run another configuration the same way.
#
#   here:            bash scripts/gpu-test.sh build     (stages binaries)
#                    (for RUN_7B: a token mixture, e.g. .carry/run7b/mix, see docs/distributed.md)
#   GPU machine:     OUT=$OUT bash bench/scaling.sh
#                    OUT=$OUT RUN_7B=1 DATA_7B=.carry/run7b/mix STEPS_7B=200 bash bench/scaling.sh
# Writes $OUT/scaling.jsonl (one line per train_dp_bench run) and, with RUN_7B, $OUT/llama-7b.log and
# $OUT/llama-7b.metrics.jsonl (the run itself, checkpoint included, goes to RUN_DIR_7B, default /tmp/llama-7b).
set -uo pipefail
cd "$(dirname "$0")/.."
STAGE=.carry/gpu
if [ ! -x "$STAGE/bin/train_dp_bench" ] && [ -f "$STAGE.tar.gz" ]; then tar xzf "$STAGE.tar.gz" -C .carry; fi
[ -x "$STAGE/bin/train_dp_bench" ] || { echo "no $STAGE/bin/train_dp_bench: run 'scripts/gpu-test.sh build' first"; exit 1; }
export LD_LIBRARY_PATH="$PWD/$STAGE/lib:${LD_LIBRARY_PATH:-}"
# NVLink multicast stays off (it can take a shared host's GPUs out of service).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUT=${OUT:-/tmp}
STEPS=${STEPS:-10}
JSON="$OUT/scaling.jsonl"
: > "$JSON"
GPUS=$(nvidia-smi --list-gpus | wc -l)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sort | uniq -c
mpi() {
  local n=$1
  shift
  mpirun --allow-run-as-root --bind-to none -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE -x TORCH_SYMM_MEM_DISABLE_MULTICAST \
    -x NVSHMEM_DISABLE_NVLS -np "$n" "$@"
}
dp_bench() {
  local n=$1
  shift
  mpi "$n" "$STAGE/bin/train_dp_bench" --shape 1B --overlap --overlap-param --steps "$STEPS" --json "$@" | tee -a "$JSON"
}
[ "${SKIP_DP:-0}" = 1 ] || for n in 1 2 4 8; do
  [ "$n" -le "$GPUS" ] && dp_bench "$n"
done
[ "${SKIP_DP:-0}" = 1 ] || { [ "$GPUS" -ge 4 ] && dp_bench "$GPUS" --tp 2; }
if [ "${BF16_PARAMS:-0}" = 1 ] && [ "${SKIP_DP:-0}" != 1 ]; then
  for n in 2 4 8; do
    [ "$n" -le "$GPUS" ] && dp_bench "$n" --bf16-params
  done
  [ "$GPUS" -ge 4 ] && dp_bench "$GPUS" --tp 2 --bf16-params
fi
if [ "${BENCH_7B:-0}" = 1 ]; then
  mpi "$GPUS" "$STAGE/bin/train_dp_bench" --shape 7B --recompute --overlap --overlap-param --bf16-params \
    --steps "$STEPS" --json | tee -a "$JSON"
fi

python3 - "$JSON" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
one = next((r for r in rows if r["ranks"] == 1), None)
print("\n| model | setup | ranks | ms/step | compute | exposed | exposed share | tok/s per GPU | of 1 GPU | MFU | peak GiB |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    same = one and r is not one and r["model"] == one["model"]
    eff = f"{100 * r['tokens_per_s_per_gpu'] / one['tokens_per_s_per_gpu']:.1f}%" if same else "-"
    share = 100 * r["exposed_comm_and_update_ms"] / r["ms_per_step"]
    print(f"| {r['model']} | {r['mode']} | {r['ranks']} | {r['ms_per_step']:.1f} | {r['compute_ms']:.1f} | {r['exposed_comm_and_update_ms']:.1f} "
          f"| {share:.1f}% | {r['tokens_per_s_per_gpu']:,.0f} | {eff} | {100 * r['mfu_989']:.1f}% | {r['max_mem_gib']:.1f} |")
print("(exposed: the step's time outside forward + backward: the reduction's tail, the update, the gathers not hidden;"
      " on one GPU, the update alone)")
EOF

if [ "${RUN_7B:-0}" = 1 ]; then
  DATA_7B=${DATA_7B:-.carry/run7b/mix}
  MEM_MIB=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
  TP=1
  [ "$MEM_MIB" -lt 102400 ] && [ "$GPUS" -ge 2 ] && TP=2
  TP=${TP_7B:-$TP}
  CONFIG_7B=${CONFIG_7B:-examples/llama-7b.toml}
  echo "== agpt train $CONFIG_7B on $GPUS GPUs, tensor parallel $TP, ${STEPS_7B:-200} steps"
  # The run's directory stays off $OUT: its final checkpoint is about 96 GB. Its metrics come back.
  RUN_DIR=${RUN_DIR_7B:-/tmp/llama-7b}
  rm -rf "$RUN_DIR"
  # shellcheck disable=SC2086  # EXTRA_7B is a list of arguments
  mpi "$GPUS" "$STAGE/bin/agpt" train "$CONFIG_7B" --data.mixture "$DATA_7B" --train.steps "${STEPS_7B:-200}" \
    --train.warmup 20 --train.eval_every 0 --train.log_every 10 --tp "$TP" --train.out_dir "$RUN_DIR" \
    --train.plot false ${EXTRA_7B:-} 2>&1 | grep -v '^\s*$' | tee "$OUT/llama-7b.log" | tail -30
  cp "$RUN_DIR/metrics.jsonl" "$OUT/llama-7b.metrics.jsonl" 2>/dev/null
  python3 - "$RUN_DIR/metrics.jsonl" <<'EOF'
import json, statistics, sys
steps = [json.loads(l) for l in open(sys.argv[1])]
steps = [s for s in steps if "tokens_per_s" in s and s["step"] > 10]
if steps:
    tps = statistics.median(s["tokens_per_s"] for s in steps)
    mfu = statistics.median(s.get("mfu", 0) for s in steps)
    peak = max(s.get("device_peak_mib", 0) for s in steps) / 1024
    print(f"median of steps 11..{steps[-1]['step']}: {tps:,.0f} tokens/s ({tps / steps[-1].get('ranks', 1):,.0f} per GPU), "
          f"MFU {100 * mfu:.1f}% per GPU, {peak:.1f} GiB peak on rank 0")
EOF
fi
