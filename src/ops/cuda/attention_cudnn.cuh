// cuDNN's fused flash attention (scaled dot-product attention) for bf16 activations, forward and
// backward, built through the cuDNN backend (graph) API in C: causal (top-left aligned, Tq == Tk),
// grouped-query (H % KV == 0, K/V keep their KV heads), scale 1/sqrt(hd). Same layouts and
// semantics as attention_mma.cuh:
//   q, out, dout, dq [B, T, H, hd] bf16; k, v, dk, dv [B, T, KV, hd] bf16 (all row-major);
//   lse [B, H, T] fp32 = natural log of the sum of exp of the scores scaled by 1/sqrt(hd)
//   (cuDNN's softmax "stats" tensor is the same quantity, so the backward accepts an lse written
//   by attention_forward_mma as well as by attention_forward_cudnn).
// Unlike attention_backward_mma, the backward OVERWRITES dq, dk, dv, which are bf16.
//
// Each function returns false, having done nothing, when cuDNN is not compiled in
// (AGPT_HAVE_CUDNN), the shape or device is unsupported (hd not a multiple of 8 or above 256,
// H % KV != 0, a pointer not 16-byte aligned, compute capability below 8.0), or cuDNN refuses the
// graph; the caller then uses agpt's own kernels. Refusals are cached per shape. A failure while
// executing an already built plan throws agpt::Error with cuDNN's message.
//
// Determinism: on sm_90 cuDNN 9's SDPA backward has two forms, chosen by the graph's topology.
// With dQ = dS·K written into an fp32 "dQ accumulator" tensor (then converted to bf16) the engine
// accumulates dQ with atomics (fast, not reproducible). With dQ = dS·K written straight into the
// bf16 dQ tensor it takes the "dP workspace" form (dS is staged in a B·H·T·T bf16 workspace and
// dQ is a separate ordered product): bitwise reproducible. That is what cudnn-frontend's
// SDPA_backward_attributes::set_deterministic_algorithm(true) lowers to on Hopper (cuDNN < 9.25
// has no other deterministic option; from 9.25 an engine knob STAGES=4 offers ordered dQ
// accumulation with a linear workspace). agpt uses the deterministic form unless the call allows
// the atomic one (or attention_cudnn_allow_nondeterministic(true) was called), falling back to the
// atomic form only when cuDNN refuses the deterministic graph. Measured on an H200 with cuDNN 9.14 and 9.19: the
// deterministic form repeats bit for bit; the atomic form's dq differs between two identical runs
// (GQA shapes). Neither engine configuration carries CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC, so the
// note cannot tell the two apart: the graph topology decides.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace agpt::ops::cuda {

bool attention_forward_cudnn(void* out, float* lse, const void* q, const void* k, const void* v, int64_t B, int64_t T,
                             int64_t H, int64_t KV, int64_t hd, cudaStream_t s);

bool attention_backward_cudnn(void* dq, void* dk, void* dv, const void* dout, const void* q, const void* k,
                              const void* v, const void* out, const float* lse, int64_t B, int64_t T, int64_t H,
                              int64_t KV, int64_t hd, cudaStream_t s, bool allow_atomic = false);

// Whether the backward just run (on this thread's last successful call) used the deterministic
// form (no dQ atomics), i.e. is bitwise reproducible, for documentation and tests.
bool attention_backward_cudnn_deterministic();

// Lets every backward use cuDNN's faster atomic-dQ form (default false: deterministic). Process-wide;
// for benchmarks and tests (a backend passes allow_atomic instead).
void attention_cudnn_allow_nondeterministic(bool allow);

// Why cuDNN last refused a graph (empty when it never did); for logs and tests.
std::string attention_cudnn_last_refusal();

// cuDNN's version as cudnnGetVersion() reports it (e.g. 91900), 0 when not compiled in.
int64_t attention_cudnn_version();

}  // namespace agpt::ops::cuda
