// GemmTuner (src/ops/cuda/gemm_tuner.cu): the three products of a Linear as the CUDA backend calls
// them (forward T·N beta 0 into bf16, dx N·N beta 1 into bf16, dw N·T beta 1 into fp32), at sizes
// with and without multiples of 16, against cublasGemmEx on the same inputs; beta 1 accumulates
// exactly once (the timing calls never touch C); the results file: reloaded by a second tuner (no
// re-tuning, same choice, same bytes), shared by two tuners (the later one adopts the first
// result), a header of another GPU (ignored, re-tuned, rewritten), malformed lines (skipped with
// file:line), a file that is no tuning file (left untouched) and an unwritable path (tuning in
// memory).
// The tuner is compiled only with the CUDA backend; a CPU-only build has nothing to test here.
#if AGPT_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "gpu_test_util.h"
#include "ops/cuda/gemm_tuner.cuh"
#include "ops/tensor.h"

namespace agpt::ops::cuda {
namespace {

using gpu_testing::Rng;
using gpu_testing::rel_l2;

constexpr size_t kWorkspaceBytes = 64ull << 20;  // as CudaBackend's
constexpr double kBf16Tol = 1e-2;                // bf16 C: an ulp (2^-8) where algorithms round differently
constexpr double kF32Tol = 1e-4;                 // fp32 C: accumulation order only

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

class DeviceBytes {
 public:
  explicit DeviceBytes(size_t n) : n_(n) { cuda_ok(cudaMalloc(&p_, n), "cudaMalloc"); }
  ~DeviceBytes() { cudaFree(p_); }
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
  void* get() const { return p_; }
  void upload(const std::vector<unsigned char>& v) {
    cuda_ok(cudaMemcpy(p_, v.data(), n_, cudaMemcpyHostToDevice), "upload");
  }
  std::vector<unsigned char> download() const {
    std::vector<unsigned char> v(n_);
    cuda_ok(cudaMemcpy(v.data(), p_, n_, cudaMemcpyDeviceToHost), "download");
    return v;
  }

 private:
  void* p_ = nullptr;
  size_t n_;
};

// One cuBLAS call: column-major C (m×n) = op(A)·op(B) + beta·C.
struct Product {
  const char* name;
  cublasOperation_t opa, opb;
  int m, n, k, lda, ldb, ldc;
  float beta;
  bool c_bf16;
  size_t a_elems() const { return static_cast<size_t>(lda) * (opa == CUBLAS_OP_N ? k : m); }
  size_t b_elems() const { return static_cast<size_t>(ldb) * (opb == CUBLAS_OP_N ? n : k); }
  size_t c_bytes() const { return static_cast<size_t>(ldc) * n * (c_bf16 ? 2 : 4); }
};

// CudaBackend::do_matmul_forward / do_matmul_backward for x [N, I], w [O, I].
std::vector<Product> linear_products(int N, int I, int O) {
  return {{"forward", CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, I, I, O, 0.0f, true},
          {"dx", CUBLAS_OP_N, CUBLAS_OP_N, I, N, O, I, O, I, 1.0f, true},
          {"dw", CUBLAS_OP_N, CUBLAS_OP_T, I, O, N, I, O, I, 1.0f, false}};
}

std::vector<unsigned char> random_bf16(size_t n, Rng& rng) {
  std::vector<unsigned char> v(n * 2);
  for (size_t i = 0; i < n; ++i) {
    const uint16_t h = f32_to_bf16(static_cast<float>(rng.uniform()));
    std::memcpy(&v[i * 2], &h, 2);
  }
  return v;
}

std::vector<float> as_floats(const std::vector<unsigned char>& bytes, bool bf16) {
  std::vector<float> v(bytes.size() / (bf16 ? 2 : 4));
  for (size_t i = 0; i < v.size(); ++i) {
    if (bf16) {
      uint16_t h;
      std::memcpy(&h, &bytes[i * 2], 2);
      v[i] = bf16_to_f32(h);
    } else {
      std::memcpy(&v[i], &bytes[i * 4], 4);
    }
  }
  return v;
}

// A product with its inputs: A and B on the device, C's initial values on the host.
struct Case {
  Product p;
  DeviceBytes a, b;
  std::vector<unsigned char> c0;
  Case(const Product& product, Rng& rng) : p(product), a(p.a_elems() * 2), b(p.b_elems() * 2) {
    a.upload(random_bf16(p.a_elems(), rng));
    b.upload(random_bf16(p.b_elems(), rng));
    const size_t c_elems = p.c_bytes() / (p.c_bf16 ? 2 : 4);
    if (p.c_bf16) {
      c0 = random_bf16(c_elems, rng);
    } else {
      const std::vector<float> f = gpu_testing::random_floats(c_elems, rng);
      c0.resize(p.c_bytes());
      std::memcpy(c0.data(), f.data(), c0.size());
    }
  }
  int choice(const GemmTuner& t) const {
    return t.choice(p.opa, p.opb, p.m, p.n, p.k, p.lda, p.ldb, p.beta, p.c_bf16, p.ldc);
  }
};

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// The choice rule needs no GPU: it runs wherever the CUDA backend is compiled (CI included).
TEST(GemmTunerChoice, KeepsTheDefaultUnlessClearlyFaster) {
  const double gain = 0.03;
  // Another candidate 1% faster: within timing noise, the heuristic's first stays.
  std::vector<TimedCandidate> near = {{0, 1.00f}, {3, 0.99f}, {5, 1.20f}};
  EXPECT_EQ(choose_candidate(near, gain), 0);
  // 8% faster: taken.
  std::vector<TimedCandidate> clear = {{0, 1.00f}, {6, 0.92f}, {7, 0.95f}};
  EXPECT_EQ(choose_candidate(clear, gain), 6);
  // Exactly at the margin counts as a gain; just short of it does not.
  std::vector<TimedCandidate> edge = {{0, 1.00f}, {2, 0.96f}};
  EXPECT_EQ(choose_candidate(edge, 0.04), 2);
  EXPECT_EQ(choose_candidate(edge, 0.05), 0);
  // Without the margin: simply the fastest; ties to the earlier candidate.
  std::vector<TimedCandidate> tie = {{0, 1.00f}, {4, 0.90f}, {2, 0.90f}};
  EXPECT_EQ(choose_candidate(tie, 0.0), 2);
  // The default did not run (left out): the fastest of the rest.
  std::vector<TimedCandidate> no_default = {{1, 1.00f}, {2, 0.99f}};
  EXPECT_EQ(choose_candidate(no_default, gain), 2);
  EXPECT_EQ(choose_candidate({}, gain), -1);
}

class GemmTunerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AGPT_REQUIRE_GPU();
    ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(cublasCreate(&blas_), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(cublasSetStream(blas_, stream_), CUBLAS_STATUS_SUCCESS);
    ASSERT_EQ(cudaMalloc(&workspace_, kWorkspaceBytes), cudaSuccess);
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("agpt_gemm_tuner_" + std::to_string(::getpid()) + "_" + info->name() + ".txt");
    std::filesystem::remove(path_);
  }
  void TearDown() override {
    if (blas_) cublasDestroy(blas_);
    if (workspace_) cudaFree(workspace_);
    if (stream_) cudaStreamDestroy(stream_);
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove(path_, ec);
  }

  GemmTuner tuner() { return GemmTuner(path_.string(), workspace_, kWorkspaceBytes); }

  // C after cublasGemmEx as CudaBackend::gemm calls it, from C's initial values.
  std::vector<unsigned char> reference(const Case& c) {
    DeviceBytes out(c.p.c_bytes());
    out.upload(c.c0);
    const float one = 1.0f;
    const cublasStatus_t st =
        cublasGemmEx(blas_, c.p.opa, c.p.opb, c.p.m, c.p.n, c.p.k, &one, c.a.get(), CUDA_R_16BF, c.p.lda, c.b.get(),
                     CUDA_R_16BF, c.p.ldb, &c.p.beta, out.get(), c.p.c_bf16 ? CUDA_R_16BF : CUDA_R_32F, c.p.ldc,
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string("cublasGemmEx: ") + cublasGetStatusString(st));
    cuda_ok(cudaStreamSynchronize(stream_), "sync");
    return out.download();
  }

  // C after the tuner's product, from C's initial values (expects the tuner to take it).
  std::vector<unsigned char> tuned(GemmTuner& t, const Case& c) {
    DeviceBytes out(c.p.c_bytes());
    out.upload(c.c0);
    const bool ran = t.matmul(c.p.opa, c.p.opb, c.p.m, c.p.n, c.p.k, c.a.get(), c.p.lda, c.b.get(), c.p.ldb, c.p.beta,
                              out.get(), c.p.c_bf16, c.p.ldc, stream_);
    EXPECT_TRUE(ran) << c.p.name << ": the tuner found no algorithm";
    cuda_ok(cudaStreamSynchronize(stream_), "sync");
    return out.download();
  }

  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  void* workspace_ = nullptr;
  std::filesystem::path path_;
  Rng rng_{77};
};

TEST_F(GemmTunerTest, MatchesGemmExAndAccumulatesOnce) {
  GemmTuner t = tuner();
  size_t expected_tuned = 0;
  // (N, I, O): multiples of 16, and odd sizes (leading dimensions not a multiple of 8 elements).
  for (auto [N, I, O] : {std::tuple{64, 128, 256}, std::tuple{37, 100, 77}, std::tuple{200, 320, 1000}}) {
    for (const Product& p : linear_products(N, I, O)) {
      const Case c(p, rng_);
      const std::string what = std::string(p.name) + " N" + std::to_string(N) + " I" + std::to_string(I) + " O" +
                               std::to_string(O);
      const std::vector<float> ref = as_floats(reference(c), p.c_bf16);
      const std::vector<unsigned char> first = tuned(t, c);
      const std::vector<float> got = as_floats(first, p.c_bf16);
      ++expected_tuned;
      EXPECT_EQ(t.tuned(), expected_tuned) << what;
      EXPECT_GE(c.choice(t), 0) << what;
      const double tol = p.c_bf16 ? kBf16Tol : kF32Tol;
      EXPECT_REL_L2(got, ref, tol, what.c_str());
      if (p.beta != 0) {  // what was added to C: the product once (timing calls left C alone)
        const std::vector<float> c0 = as_floats(c.c0, p.c_bf16);
        std::vector<float> added_ref(ref.size()), added_got(got.size());
        for (size_t i = 0; i < ref.size(); ++i) added_ref[i] = ref[i] - c0[i], added_got[i] = got[i] - c0[i];
        EXPECT_REL_L2(added_got, added_ref, tol, (what + " (added to C)").c_str());
      }
      // The same product again: no tuning, the same bytes.
      EXPECT_EQ(tuned(t, c), first) << what;
      EXPECT_EQ(t.tuned(), expected_tuned) << what;
    }
  }
}

// The residual adds (CudaBackend::matmul_add_forward): C = product + addend with the addend apart
// from C. Tuned on first use (the timing calls may write C, which is not read), repeating bit for
// bit, the addend left as it was, and the in-place form's values (C preloaded with the addend; the
// same algorithm may round the two forms' epilogues apart by an ulp, as measured on an H100).
TEST_F(GemmTunerTest, SeparateAddendMatchesInPlace) {
  GemmTuner t = tuner();
  const Product p{"residual forward", CUBLAS_OP_T, CUBLAS_OP_N, 256, 64, 128, 128, 128, 256, 1.0f, true};
  const Case c(p, rng_);
  DeviceBytes addend(p.c_bytes()), out(p.c_bytes());
  addend.upload(c.c0);
  out.upload(random_bf16(p.c_bytes() / 2, rng_));  // whatever C held
  ASSERT_TRUE(t.matmul(p.opa, p.opb, p.m, p.n, p.k, c.a.get(), p.lda, c.b.get(), p.ldb, p.beta, out.get(), p.c_bf16,
                       p.ldc, stream_, addend.get()));
  cuda_ok(cudaStreamSynchronize(stream_), "sync");
  EXPECT_EQ(t.tuned(), 1u);
  EXPECT_EQ(addend.download(), c.c0);
  const std::vector<unsigned char> first = out.download();
  ASSERT_TRUE(t.matmul(p.opa, p.opb, p.m, p.n, p.k, c.a.get(), p.lda, c.b.get(), p.ldb, p.beta, out.get(), p.c_bf16,
                       p.ldc, stream_, addend.get()));
  cuda_ok(cudaStreamSynchronize(stream_), "sync");
  EXPECT_EQ(out.download(), first) << "repeats";
  EXPECT_REL_L2(as_floats(first, true), as_floats(tuned(t, c), true), kBf16Tol, "against in place, same choice");
  EXPECT_EQ(t.tuned(), 1u);
  const std::vector<float> ref = as_floats(reference(c), true);
  EXPECT_REL_L2(as_floats(first, true), ref, kBf16Tol, "against cublasGemmEx in place");
}

TEST_F(GemmTunerTest, LeavesMisalignedProductsToTheCaller) {
  GemmTuner t = tuner();
  const Case c(linear_products(64, 128, 256)[0], rng_);
  DeviceBytes out(c.p.c_bytes() + 256);
  void* shifted = static_cast<char*>(out.get()) + 2;  // bf16-aligned, not 256-byte aligned
  EXPECT_FALSE(t.matmul(c.p.opa, c.p.opb, c.p.m, c.p.n, c.p.k, c.a.get(), c.p.lda, c.b.get(), c.p.ldb, c.p.beta,
                        shifted, c.p.c_bf16, c.p.ldc, stream_));
  EXPECT_EQ(t.tuned(), 0u);
  EXPECT_EQ(c.choice(t), -1);
}

TEST_F(GemmTunerTest, ResultsPersist) {
  std::vector<std::unique_ptr<Case>> cases;
  for (const Product& p : linear_products(96, 256, 384)) cases.push_back(std::make_unique<Case>(p, rng_));
  std::vector<int> choices;
  std::vector<std::vector<unsigned char>> results;
  {
    GemmTuner t = tuner();
    EXPECT_EQ(t.loaded(), 0u);
    for (const auto& c : cases) {
      results.push_back(tuned(t, *c));
      choices.push_back(c->choice(t));
    }
    EXPECT_EQ(t.tuned(), cases.size());
  }
  const std::vector<std::string> lines = read_lines(path_);
  ASSERT_EQ(lines.size(), 1 + cases.size());
  EXPECT_EQ(lines[0].rfind("agpt-gemm-tuning v2 gpu=\"", 0), 0u) << lines[0];

  GemmTuner again = tuner();
  EXPECT_EQ(again.loaded(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(cases[i]->choice(again), choices[i]) << cases[i]->p.name << " (as read)";
    EXPECT_EQ(tuned(again, *cases[i]), results[i]) << cases[i]->p.name << ": the same algorithm gives the same bytes";
    EXPECT_EQ(cases[i]->choice(again), choices[i]) << cases[i]->p.name << " (in use)";
  }
  EXPECT_EQ(again.tuned(), 0u);
  EXPECT_EQ(read_lines(path_).size(), lines.size()) << "nothing new to write";
}

TEST_F(GemmTunerTest, SharedFileTheLaterTunerAdopts) {
  const Case c(linear_products(64, 192, 320)[2], rng_);
  GemmTuner first = tuner(), second = tuner();  // second read the file before first tuned
  const std::vector<unsigned char> r1 = tuned(first, c);
  EXPECT_EQ(first.tuned(), 1u);
  EXPECT_EQ(tuned(second, c), r1);
  EXPECT_EQ(second.tuned(), 0u);
  EXPECT_EQ(second.loaded(), 1u);
  EXPECT_EQ(c.choice(second), c.choice(first));
  EXPECT_EQ(read_lines(path_).size(), 2u);
}

TEST_F(GemmTunerTest, OtherGpusHeaderIgnoredAndRewritten) {
  const Case c(linear_products(64, 128, 256)[0], rng_);
  {
    GemmTuner t = tuner();
    tuned(t, c);
  }
  const std::vector<std::string> lines = read_lines(path_);
  ASSERT_EQ(lines.size(), 2u);
  write_file(path_, "agpt-gemm-tuning v2 gpu=\"Some Other GPU\" cublaslt=1 cudart=1 workspace=1\n" + lines[1] + "\n");

  ::testing::internal::CaptureStderr();
  GemmTuner t = tuner();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("another GPU"), std::string::npos) << err;
  EXPECT_EQ(t.loaded(), 0u);
  EXPECT_EQ(c.choice(t), -1);
  tuned(t, c);
  EXPECT_EQ(t.tuned(), 1u);
  const std::vector<std::string> rewritten = read_lines(path_);
  ASSERT_EQ(rewritten.size(), 2u);
  EXPECT_EQ(rewritten[0], lines[0]) << "this machine's header";
}

TEST_F(GemmTunerTest, MalformedLinesSkipped) {
  const Case c(linear_products(64, 128, 256)[1], rng_);
  int choice = -1;
  {
    GemmTuner t = tuner();
    tuned(t, c);
    choice = c.choice(t);
  }
  const std::vector<std::string> lines = read_lines(path_);
  ASSERT_EQ(lines.size(), 2u);
  std::string bad_algo = lines[1];
  const size_t at = bad_algo.find(" algo=");
  ASSERT_NE(at, std::string::npos) << bad_algo;
  bad_algo.replace(at, bad_algo.find(' ', at + 1) - at, " algo=99");
  write_file(path_, lines[0] + "\n" +     // 1
                        "not an entry\n" +  // 2
                        bad_algo + "\n" +   // 3
                        "\n" +              // 4: blank, skipped silently
                        lines[1] + "\n" +   // 5
                        "T N m=1\n");       // 6

  ::testing::internal::CaptureStderr();
  GemmTuner t = tuner();
  const std::string err = ::testing::internal::GetCapturedStderr();
  const std::string p = path_.string();
  for (const char* line : {":2:", ":3:", ":6:"}) EXPECT_NE(err.find(p + line), std::string::npos) << err;
  EXPECT_EQ(err.find(p + ":4:"), std::string::npos) << err;
  EXPECT_EQ(err.find(p + ":5:"), std::string::npos) << err;
  EXPECT_EQ(t.loaded(), 1u);
  EXPECT_EQ(c.choice(t), choice);
  tuned(t, c);
  EXPECT_EQ(t.tuned(), 0u);
}

TEST_F(GemmTunerTest, ForeignFileLeftUntouched) {
  const std::string text = "these are someone's notes, not tuning results\n";
  write_file(path_, text);
  ::testing::internal::CaptureStderr();
  GemmTuner t = tuner();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("not a GEMM tuning file"), std::string::npos) << err;
  const Case c(linear_products(64, 128, 256)[2], rng_);
  tuned(t, c);
  EXPECT_EQ(t.tuned(), 1u);
  EXPECT_GE(c.choice(t), 0);
  std::ifstream in(path_, std::ios::binary);
  std::stringstream now;
  now << in.rdbuf();
  EXPECT_EQ(now.str(), text);
}

TEST_F(GemmTunerTest, UnwritablePathTunesInMemory) {
  path_ = std::filesystem::temp_directory_path() / ("agpt_no_such_dir_" + std::to_string(::getpid())) / "tune.txt";
  ::testing::internal::CaptureStderr();
  GemmTuner t = tuner();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("cannot be written"), std::string::npos) << err;
  const Case c(linear_products(64, 128, 256)[0], rng_);
  tuned(t, c);
  EXPECT_EQ(t.tuned(), 1u);
  EXPECT_FALSE(std::filesystem::exists(path_));
}

}  // namespace
}  // namespace agpt::ops::cuda
#endif  // AGPT_HAVE_CUDA
