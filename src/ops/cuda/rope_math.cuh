// RoPE's rotation, shared by the element-wise kernel and the q/k/v product that applies it in its
// epilogue (sm90/gemm.cu). Explicit fp32 intrinsics: the compiler may not contract them into fused
// multiply-adds differently in the two places, so both give the same bits.
#pragma once

namespace agpt::ops::cuda {

// Rotates the pair (x1, x2) = (x[i], x[i + hd/2]) by the angle whose cosine and sine are c, s
// (inverse: by minus the angle, the backward).
__device__ __forceinline__ void rope_pair(float& x1, float& x2, float c, float s, bool inverse) {
  const float a = x1, b = x2;
  if (!inverse) {
    x1 = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    x2 = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
  } else {
    x1 = __fadd_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    x2 = __fsub_rn(__fmul_rn(b, c), __fmul_rn(a, s));
  }
}

}  // namespace agpt::ops::cuda
