// Weights stored in bf16 (train.param_dtype = "bf16": the distributed optimizer keeps the fp32
// master copy) give the CPU ops exactly what fp32 weights holding the same values give: the
// embedding, RMSNorm forward and backward, and every matrix product. Gradients stay fp32.
#include <gtest/gtest.h>

#include "base/error.h"
#include "ops/cpu/cpu_backend.h"
#include "test_noise.h"

namespace agpt::ops {
namespace {

std::vector<float> bf16_values(size_t n, uint64_t seed) {
  std::vector<float> v = testing::lcg_uniform(n, seed, -1, 1);
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(x));
  return v;
}

TEST(Bf16Weights, GiveWhatFp32WeightsOfTheSameValuesGive) {
  auto be = make_cpu_backend(2);
  const int64_t N = 6, I = 40, O = 24, V = 30;
  auto wv = bf16_values(O * I, 1), xv = bf16_values(N * I, 2), tv = bf16_values(V * I, 3), nv = bf16_values(I, 4);
  const Tensor w32 = be->from_host({O, I}, wv), w16 = be->from_host({O, I}, wv, DType::kBF16);
  const Tensor x = be->from_host({N, I}, xv);
  auto both = [&](auto&& op) {  // op(weight) -> host values
    auto a = op(w32, false), b = op(w16, true);
    EXPECT_EQ(a, b);
  };
  both([&](const Tensor& w, bool) {
    Tensor y = be->empty({N, O});
    be->matmul_forward(y, x, w);
    return be->to_host_f32(y);
  });
  both([&](const Tensor& w, bool) {
    Tensor y = be->from_host({N, O}, bf16_values(N * O, 5));
    be->matmul_add_forward(y, y, x, w);
    return be->to_host_f32(y);
  });
  const Tensor dy = be->from_host({N, O}, bf16_values(N * O, 6));
  both([&](const Tensor& w, bool) {
    Tensor dx = be->zeros({N, I}), dw = be->zeros({O, I});  // fp32 gradients either way
    be->matmul_backward(dx, dw, dy, x, w);
    auto out = be->to_host_f32(dx), g = be->to_host_f32(dw);
    out.insert(out.end(), g.begin(), g.end());
    return out;
  });
  const Tensor t32 = be->from_host({V, I}, tv), t16 = be->from_host({V, I}, tv, DType::kBF16);
  const Tensor ids = be->from_host({N}, std::vector<int32_t>{0, 29, 3, 3, 17, 8});
  Tensor e32 = be->empty({N, I}), e16 = be->empty({N, I});
  be->embedding_forward(e32, ids, t32);
  be->embedding_forward(e16, ids, t16);
  EXPECT_EQ(be->to_host_f32(e16), be->to_host_f32(e32));
  const Tensor n32 = be->from_host({I}, nv), n16 = be->from_host({I}, nv, DType::kBF16);
  auto norm = [&](const Tensor& w) {
    Tensor out = be->empty({N, I}), rstd = be->empty({N}), dx = be->zeros({N, I}), dw = be->zeros({I});
    be->rmsnorm_forward(out, rstd, x, w, 1e-5f);
    be->rmsnorm_backward(dx, dw, be->from_host({N, I}, bf16_values(N * I, 7)), x, w, rstd);
    auto v = be->to_host_f32(out), d = be->to_host_f32(dx), g = be->to_host_f32(dw);
    v.insert(v.end(), d.begin(), d.end());
    v.insert(v.end(), g.begin(), g.end());
    return v;
  };
  EXPECT_EQ(norm(n16), norm(n32));
}

TEST(Bf16Weights, GradientsMustStayFp32AndOtherTypesAreRefused) {
  auto be = make_cpu_backend(1);
  const Tensor x = be->zeros({2, 4}), w16 = be->zeros({3, 4}, DType::kBF16), dy = be->zeros({2, 3});
  Tensor dx = be->zeros({2, 4}), dw16 = be->zeros({3, 4}, DType::kBF16);
  EXPECT_THROW(be->matmul_backward(dx, dw16, dy, x, w16), Error);  // a bf16 weight gradient
  Tensor y = be->empty({2, 3});
  const Tensor wi = be->zeros({3, 4}, DType::kI32);
  try {
    be->matmul_forward(y, x, wi);
    ADD_FAILURE() << "an int32 weight was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f32 or bf16"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace agpt::ops
