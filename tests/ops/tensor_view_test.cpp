// Tensor views with an offset: narrow() along dimension 0, composed with reshape() and narrow(),
// used as op inputs and outputs, and the copy rules for views of one buffer.
#include <gtest/gtest.h>

#include <numeric>

#include "base/error.h"
#include "ops/cpu/cpu_backend.h"

namespace agpt::ops {
namespace {

std::vector<float> iota(size_t n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.0f);
  return v;
}

TEST(TensorView, NarrowSharesStorageAtTheRowOffset) {
  auto be = make_cpu_backend(1);
  Tensor t = be->from_host({5, 2, 3}, iota(30));
  Tensor rows = t.narrow(1, 3);
  EXPECT_EQ(rows.shape(), (Shape{3, 2, 3}));
  EXPECT_TRUE(rows.same_storage(t));
  EXPECT_EQ(rows.offset(), 6 * sizeof(float));
  EXPECT_EQ(rows.data<float>(), t.data<float>() + 6);
  const std::vector<float> all30 = iota(30);
  std::vector<float> want(all30.begin() + 6, all30.begin() + 24);
  EXPECT_EQ(be->to_host_f32(rows), want);

  // Writing through the view changes exactly those rows of the whole.
  std::vector<float> ones(6, -1.0f);
  Tensor middle = t.narrow(2, 1);
  be->upload(middle, ones.data(), ones.size() * sizeof(float));
  std::vector<float> all = be->to_host_f32(t);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], i >= 12 && i < 18 ? -1.0f : float(i)) << i;
}

TEST(TensorView, ReshapeKeepsTheOffsetAndNarrowComposes) {
  auto be = make_cpu_backend(1);
  Tensor t = be->from_host({6, 4}, iota(24));
  Tensor v = t.narrow(2, 4).reshape({2, 8});  // rows 2..5 seen as two rows of 8
  EXPECT_EQ(v.offset(), 8 * sizeof(float));
  Tensor w = v.narrow(1, 1);                  // the second of them: elements 16..23
  EXPECT_EQ(w.offset(), 16 * sizeof(float));
  const std::vector<float> all24 = iota(24);
  std::vector<float> want(all24.begin() + 16, all24.end());
  EXPECT_EQ(be->to_host_f32(w), want);
  EXPECT_EQ(be->to_host_f32(t.narrow(3, 0)).size(), 0u);  // an empty view is fine
  EXPECT_EQ(t.narrow(6, 0).offset(), 24 * sizeof(float));
}

TEST(TensorView, BadRangesFailClearly) {
  auto be = make_cpu_backend(1);
  Tensor t = be->zeros({4, 3});
  for (auto [b, c] : {std::pair<int64_t, int64_t>{-1, 2}, {3, 2}, {0, 5}, {5, 0}, {1, -1}}) {
    try {
      t.narrow(b, c);
      ADD_FAILURE() << "no error for narrow(" << b << ", " << c << ")";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("dimension 0 has 4"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(Tensor().narrow(0, 0), Error);
  // A view that would run past its storage cannot be made.
  float buffer[4] = {};
  auto storage = std::make_shared<Storage>(Device::kCpu, buffer, sizeof buffer);
  EXPECT_NO_THROW(Tensor(storage, {3}, DType::kF32, 4));
  EXPECT_THROW(Tensor(storage, {4}, DType::kF32, 4), Error);
  EXPECT_THROW(Tensor(storage, {0}, DType::kF32, 20), Error);
}

TEST(TensorView, OpsReadAndWriteViews) {
  auto be = make_cpu_backend(1);
  // y rows 1..2 of a 4-row buffer = x rows 2..3 of another · wᵀ.
  Tensor x = be->from_host({4, 3}, iota(12));
  Tensor w = be->from_host({2, 3}, std::vector<float>{1, 0, 0, 0, 0, 1});  // picks columns 0 and 2
  Tensor y = be->zeros({4, 2});
  Tensor y_rows = y.narrow(1, 2);
  be->matmul_forward(y_rows, x.narrow(2, 2), w);
  EXPECT_EQ(be->to_host_f32(y), (std::vector<float>{0, 0, 6, 8, 9, 11, 0, 0}));
}

TEST(TensorView, CopyBetweenViewsOfOneBuffer) {
  auto be = make_cpu_backend(1);
  Tensor t = be->from_host({4, 2}, iota(8));
  Tensor dst = t.narrow(2, 2);
  be->copy(dst, t.narrow(0, 2));  // disjoint rows: copied
  EXPECT_EQ(be->to_host_f32(t), (std::vector<float>{0, 1, 2, 3, 0, 1, 2, 3}));
  Tensor same = t.narrow(1, 2);
  be->copy(same, t.narrow(1, 2));  // the same view: nothing to do
  Tensor overlap = t.narrow(1, 2);
  EXPECT_THROW(be->copy(overlap, t.narrow(0, 2)), Error);
}

}  // namespace
}  // namespace agpt::ops
