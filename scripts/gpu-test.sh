#!/usr/bin/env bash
# GPU tests (GoogleTest label "gpu": every CUDA op against the CPU reference, the PyTorch
# references on the GPU, training that tracks the CPU curve, bit-identical resume). On a machine
# with 2 or more GPUs also the multi-rank tests (tests/dist_mpi) with one GPU per rank and NCCL:
# data parallel and tensor parallel (TP=2) against one GPU, resumes across layouts; with 4 GPUs
# also TP 2 x DP 2.
#
#   bash scripts/gpu-test.sh build   # on a build machine with nvcc (Debian 12, CUDA 13): builds for
#                                     # sm_90 and stages binaries, libraries and test data in .carry/gpu
#   bash scripts/gpu-test.sh run     # on the GPU machine, from the repository root with
#                                     # .carry/gpu.tar.gz copied there: runs every GPU test, prints a summary
#   bash scripts/gpu-test.sh         # both, when this machine has nvcc and a GPU
#
# The GPU machine needs the CUDA 13 runtime, cuBLAS, cuDNN 9 (when the build found cuDNN; any 9.x
# works, e.g. the system's 9.14 there against 9.19 headers here), NCCL and Open MPI (its mpirun starts the
# multi-GPU runs, so its own libmpi must be used) and libxml2: OpenBLAS is linked statically and the other
# libraries agpt uses are staged beside the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=.carry/gpu
BUILD_DIR=${BUILD_DIR:-build-gpu}
mode=${1:-all}

build() {
  if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDACXX=/usr/local/cuda/bin/nvcc; fi
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DAGPT_CUDA=ON -DBLA_STATIC=ON >/dev/null
  local benches
  benches="$(cd bench && ls train_*.cpp 2>/dev/null | sed 's/\.cpp$//' | tr '\n' ' ') gemm_sm90_bench"
  ninja -C "$BUILD_DIR" test_gpu test_dist_mpi agpt $benches
  rm -rf "$STAGE" && mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/testdata"
  cp "$BUILD_DIR/test_gpu" "$BUILD_DIR/test_dist_mpi" "$BUILD_DIR/agpt" "$STAGE/bin/"
  for b in "$BUILD_DIR"/train_*bench "$BUILD_DIR"/gemm_sm90_bench; do [ -x "$b" ] && cp "$b" "$STAGE/bin/"; done
  # Libraries that a stock Ubuntu 24.04 + CUDA image may lack (not libc, libstdc++ or CUDA's own).
  ldd "$BUILD_DIR/test_gpu" "$BUILD_DIR/agpt" | awk '/=> \// {print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|librt|libpthread|libgcc_s|libstdc\+\+|ld-linux|libcuda|libcudart|libcublas|libcublasLt|libcudnn[a-z_]*|libnccl|libmpi[a-z_]*|libopen-[a-z]*|libpmix|libhwloc|libevent[a-z_-]*|libudev|libz|libxml2|libicu[a-z]*|liblzma)[.-]' |
    xargs -r -I{} cp -L {} "$STAGE/lib/"
  cp -r ../shared/testdata/llama-ref "$STAGE/testdata/" 2>/dev/null || echo "note: ../shared/testdata/llama-ref not found"
  # The PyTorch baseline for bench/gpu_vs_torch.sh.
  mkdir -p "$STAGE/peers" && cp ../shared/peers/torch_llama_baseline.py "$STAGE/peers/" 2>/dev/null || true
  strip "$STAGE"/bin/*
  # One compressed file travels to the GPU machine (its copy limit is 64 MiB).
  tar czf "$STAGE.tar.gz" -C "$(dirname "$STAGE")" "$(basename "$STAGE")"
  du -sh "$STAGE" "$STAGE.tar.gz"
}

run() {
  if [ ! -x "$STAGE/bin/test_gpu" ] && [ -f "$STAGE.tar.gz" ]; then tar xzf "$STAGE.tar.gz" -C "$(dirname "$STAGE")"; fi
  [ -x "$STAGE/bin/test_gpu" ] || { echo "no $STAGE/bin/test_gpu: run 'scripts/gpu-test.sh build' first"; exit 1; }
  export LD_LIBRARY_PATH="$PWD/$STAGE/lib:${LD_LIBRARY_PATH:-}"
  export AGPT_TESTDATA="$PWD/$STAGE/testdata"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  local log=${OUT:-/tmp}/gpu-test.log
  set +e
  "$STAGE/bin/test_gpu" --gtest_color=no 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]} mrc=0
  local gpus
  gpus=$(nvidia-smi --list-gpus 2>/dev/null | wc -l)
  if [ "$gpus" -ge 2 ] && command -v mpirun >/dev/null; then
    echo "== multi-rank tests on 2 GPUs (NCCL)"
    export NCCL_NVLS_ENABLE=0 AGPT_TEST_DEVICE=cuda
    mpirun --allow-run-as-root -np 2 --bind-to none -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE -x AGPT_TEST_DEVICE \
      "$STAGE/bin/test_dist_mpi" --gtest_color=no 2>&1 | tee "$log.mpi"
    mrc=${PIPESTATUS[0]}
    if [ "$gpus" -ge 4 ] && [ "$mrc" -eq 0 ]; then
      echo "== tensor parallel 2 x data parallel 2 on 4 GPUs"
      mpirun --allow-run-as-root -np 4 --bind-to none -x LD_LIBRARY_PATH -x NCCL_NVLS_ENABLE -x AGPT_TEST_DEVICE \
        "$STAGE/bin/test_dist_mpi" --gtest_color=no --gtest_filter='*FourRanks*' 2>&1 | tee -a "$log.mpi"
      mrc=${PIPESTATUS[0]}
    fi
  fi
  set -e
  echo "== summary"
  grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$log" || true
  [ -f "$log.mpi" ] && grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$log.mpi" | sed 's/^/2 GPUs: /' || true
  [ "$rc" -ne 0 ] && exit "$rc"
  exit "$mrc"
}

case "$mode" in
  build) build ;;
  run) run ;;
  all) build; run ;;
  *) echo "usage: scripts/gpu-test.sh [build|run]"; exit 2 ;;
esac
