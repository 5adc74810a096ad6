// SwiGLU's arithmetic, shared by the element-wise kernels and the products that run it in their
// epilogue (sm90/gemm.cu), so both give the same bits.
#pragma once

namespace agpt::ops::cuda {

// 1 / (1 + e^-g) through the hardware's exp2 and reciprocal (a few ulp). IEEE division's slow
// path doubled the epilogue's time in the fused SwiGLU backward (H100, 1B shape: 0.78 vs 0.53 ms).
// The same bits as __fdividef(1, 1 + __expf(-g)) in fewer instructions: flushing subnormals
// changes nothing here (e^-g below 2^-126 leaves 1 + e^-g = 1; a reciprocal below 2^-126 is 0 in
// both), so the flush-to-zero forms skip the subnormal fix-ups. Large |g| stays exact at the
// limits: e^-g = inf gives 0, e^-g = 0 gives 1.
__device__ __forceinline__ float sigmoid(float g) {
  float e, r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(g * -1.44269504088896340736f));
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(1.0f + e));
  return r;
}

// h = silu(g)·u
__device__ __forceinline__ float swiglu_value(float g, float u) { return g * sigmoid(g) * u; }

// dgate = dout·up·silu'(gate), dup = dout·silu(gate).
__device__ __forceinline__ void swiglu_grad(float g, float u, float d, float& dg, float& du) {
  const float sig = sigmoid(g);
  dg = d * u * (sig * (1.0f + g * (1.0f - sig)));
  du = d * (g * sig);
}

}  // namespace agpt::ops::cuda
