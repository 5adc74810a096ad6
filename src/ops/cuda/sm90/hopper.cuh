// Hopper (sm_90a) building blocks for agpt's own matrix-product kernels: shared-memory barriers
// (mbarrier), TMA tile loads, warpgroup matrix-multiply (wgmma) descriptors and fences.
// Everything here is PTX from NVIDIA's PTX ISA; it compiles only for sm_90a, so each function is
// empty for other targets (the host code never launches these kernels on other GPUs).
#pragma once
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define AGPT_SM90A 1
#endif

namespace agpt::ops::cuda::sm90 {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mbar_init(uint64_t* bar, int count) {
#ifdef AGPT_SM90A
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(count));
#endif
}

// Makes the barriers' initialization visible to the async proxy (TMA) and the other threads.
__device__ __forceinline__ void mbar_init_fence() {
#ifdef AGPT_SM90A
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}

// Waits until the barrier's phase with this parity has completed (a fresh barrier counts its
// phase "1" as completed, so a producer's first wait on an empty slot passes).
__device__ __forceinline__ void mbar_wait(uint64_t* bar, int parity) {
#ifdef AGPT_SM90A
  asm volatile(
      "{\n.reg .pred done;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT_%=;\n}\n" ::"r"(smem_addr(bar)),
      "r"(parity)
      : "memory");
#endif
}

__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
#ifdef AGPT_SM90A
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(bar)) : "memory");
#endif
}

// One arrival that also announces the bytes the TMA loads of this phase will deliver.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
#ifdef AGPT_SM90A
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
#endif
}

// A 2-D tile from global memory (described by the tensor map) into shared memory; the barrier
// counts its bytes. c0: the inner (contiguous) coordinate, c1: the row.
__device__ __forceinline__ void tma_load_2d(void* dst, const CUtensorMap* map, uint64_t* bar, int c0, int c1) {
#ifdef AGPT_SM90A
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];" ::"r"(
          smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(c0), "r"(c1)
      : "memory");
#endif
}

__device__ __forceinline__ void prefetch_tensor_map(const CUtensorMap* map) {
#ifdef AGPT_SM90A
  asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
#endif
}

// Shared-memory matrix descriptor for wgmma: a tile whose rows are 128 bytes (64 bf16), written
// by TMA with 128-byte swizzling, 8-row groups 1,024 bytes apart. The start address may move
// along a row in 32-byte steps (one k16 slice) inside the 1,024-byte aligned swizzle atom.
__device__ __forceinline__ uint64_t smem_desc_sw128(const void* p) {
  const uint64_t addr = smem_addr(p);
  uint64_t desc = (addr & 0x3FFFF) >> 4;  // start address, 16-byte units
  desc |= uint64_t(1) << 16;              // leading byte offset (unused with this swizzle)
  desc |= uint64_t(1024 >> 4) << 32;      // stride byte offset: between 8-row groups
  desc |= uint64_t(1) << 62;              // 128-byte swizzle
  return desc;
}

__device__ __forceinline__ void wgmma_fence() {
#ifdef AGPT_SM90A
  asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#ifdef AGPT_SM90A
  asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
#endif
}
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
#ifdef AGPT_SM90A
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(kPending) : "memory");
#endif
}

// ---- thread-block clusters: two blocks on neighbouring SMs sharing tile loads -------------------
// This block's rank in its cluster, the cluster's index and the number of clusters in the grid.
struct ClusterPlace {
  uint32_t rank = 0, id = 0, count = 1;
};
__device__ __forceinline__ ClusterPlace cluster_place() {
  ClusterPlace p;
#ifdef AGPT_SM90A
  asm volatile("mov.u32 %0, %%cluster_ctarank;\nmov.u32 %1, %%clusterid.x;\nmov.u32 %2, %%nclusterid.x;"
               : "=r"(p.rank), "=r"(p.id), "=r"(p.count));
#endif
  return p;
}
// Every thread of the cluster: what each wrote before (barrier initialization) is visible after.
__device__ __forceinline__ void cluster_sync() {
#ifdef AGPT_SM90A
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
#endif
}
// One arrival on the barrier at the same shared-memory offset in block `cta` of the cluster (no
// cluster-wide release: it only says that this block's reads of a stage, by wgmma, are done).
__device__ __forceinline__ void mbar_arrive_cluster(uint64_t* bar, uint32_t cta) {
#ifdef AGPT_SM90A
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(smem_addr(bar)), "r"(cta));
  asm volatile("mbarrier.arrive.shared::cluster.b64 _, [%0];" ::"r"(remote) : "memory");
#endif
}
// tma_load_2d into the same shared-memory offset of every block in `mask` (bit i: cluster rank i),
// each block's barrier at the same offset counting the bytes it receives.
__device__ __forceinline__ void tma_load_2d_multicast(void* dst, const CUtensorMap* map, uint64_t* bar, int c0, int c1,
                                                      uint16_t mask) {
#ifdef AGPT_SM90A
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
      " [%0], [%1, {%3, %4}], [%2], %5;" ::"r"(smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(c0), "r"(c1), "h"(mask)
      : "memory");
#endif
}

}  // namespace agpt::ops::cuda::sm90
