// One element of the AdamW update (torch.optim.AdamW's arithmetic in fp32), shared by the update
// kernels (elementwise.cu) and the weight-gradient product that applies the update in its epilogue
// (sm90/gemm.cu): one definition, so both give the same bits.
#pragma once
#include "ops/cuda/kernels.cuh"

namespace agpt::ops::cuda {

__device__ __forceinline__ void adamw_one(float& p, float g, float& m, float& v, const AdamWConstants& c) {
  float gi = g * c.grad_scale;
  float pi = p * c.decay;
  float mi = m + c.w1 * (gi - m);
  float vi = v * c.b2 + c.w2 * gi * gi;
  float denom = sqrtf(vi) / c.bias2_sqrt + c.eps;
  p = pi + c.step_size * mi / denom;
  m = mi;
  v = vi;
}

}  // namespace agpt::ops::cuda
