// The fp32 CPU reference backend. Each op is a plain loop over rows (or heads) run by parallel_for
// over fixed chunks; reductions that cross chunks are summed afterwards in chunk order, so the
// result never depends on the thread count. Matrix products go to cblas_sgemm (one-row products,
// as in decoding, to dot products split over the outputs).
#include "ops/cpu/cpu_backend.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/error.h"
#include "base/parallel.h"

namespace agpt::ops {
namespace {

class CpuStorage : public Storage {
 public:
  CpuStorage(void* data, size_t bytes) : Storage(Device::kCpu, data, bytes) {}
  ~CpuStorage() override { std::free(data()); }
};

// Sum of a[i]*b[i] with 8 independent float accumulators (vectorizes without -ffast-math and keeps
// a fixed summation order).
inline float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float tail = 0;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

// y[i] += a * x[i]
inline void axpy(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : threads_(threads > 0 ? threads : default_threads()) {
    openblas_set_num_threads(threads_);
  }
  std::string name() const override { return "cpu"; }
  Device device() const override { return Device::kCpu; }

 protected:
  // Runs fn(begin, end) over [0, n) in chunks of `grain` (chunking is independent of threads).
  template <typename Fn>
  void chunks(int64_t n, int64_t grain, Fn&& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    int64_t count = (n + grain - 1) / grain;
    parallel_for(static_cast<size_t>(count), threads_, [&](size_t c) {
      int64_t begin = static_cast<int64_t>(c) * grain;
      fn(begin, std::min(n, begin + grain));
    });
  }

  std::shared_ptr<Storage> do_allocate(size_t bytes) override {
    size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) fail("out of memory allocating ", bytes, " bytes for a tensor");
    return std::make_shared<CpuStorage>(p, rounded);
  }
  void do_zero(Tensor& t) override { std::memset(t.raw(), 0, t.bytes()); }
  void do_copy(Tensor& dst, const Tensor& src) override { std::memcpy(dst.raw(), src.raw(), src.bytes()); }
  void do_upload(Tensor& dst, const void* host) override { std::memcpy(dst.raw(), host, dst.bytes()); }
  void do_download(const Tensor& src, void* host) const override { std::memcpy(host, src.raw(), src.bytes()); }
  // bf16 tensors hold weights only (train.param_dtype): the ops widen them to fp32 first.
  void do_cast(Tensor& dst, const Tensor& src) override {
    const int64_t n = src.numel();
    if (dst.dtype() == DType::kBF16) {
      const float* from = src.data<float>();
      auto* to = static_cast<uint16_t*>(dst.raw());
      chunks(n, 1 << 14, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) to[i] = f32_to_bf16(from[i]);
      });
    } else {
      const auto* from = static_cast<const uint16_t*>(src.raw());
      float* to = dst.data<float>();
      chunks(n, 1 << 14, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) to[i] = bf16_to_f32(from[i]);
      });
    }
  }

  // The row of table for id, or -1 for an id of another rank's vocabulary shard (vocab_begin >= 0);
  // an id outside the whole table is an error in the unsharded form.
  static int64_t table_row(int32_t id, int64_t n, int64_t V, int64_t vocab_begin) {
    if (vocab_begin < 0) {
      if (id < 0 || id >= V) fail("embedding: token id ", id, " at position ", n, " is outside [0, ", V, ")");
      return id;
    }
    const int64_t row = static_cast<int64_t>(id) - vocab_begin;
    return row >= 0 && row < V ? row : -1;
  }

  void do_embedding_forward(Tensor& out, const Tensor& ids, const Tensor& stored_table, int64_t vocab_begin) override {
    const Tensor table = widened(stored_table);
    int64_t N = ids.dim(0), V = table.dim(0), D = table.dim(1);
    const int32_t* id = ids.data<int32_t>();
    std::vector<int64_t> row(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) row[n] = table_row(id[n], n, V, vocab_begin);
    const float* tab = table.data<float>();
    float* o = out.data<float>();
    chunks(N, 64, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) {
        if (row[n] < 0)
          std::fill(o + n * D, o + (n + 1) * D, 0.0f);
        else
          std::memcpy(o + n * D, tab + row[n] * D, D * sizeof(float));
      }
    });
  }

  void do_embedding_backward(Tensor& dtable, const Tensor& ids, const Tensor& dout, int64_t vocab_begin) override {
    int64_t N = ids.dim(0), V = dtable.dim(0), D = dtable.dim(1);
    const int32_t* id = ids.data<int32_t>();
    // Positions grouped by table row, in increasing position order (a stable counting sort), so each
    // row of dtable is summed by one task in a fixed order.
    std::vector<int64_t> row(static_cast<size_t>(N));
    std::vector<int64_t> start(static_cast<size_t>(V) + 1, 0);
    for (int64_t n = 0; n < N; ++n) {
      row[n] = table_row(id[n], n, V, vocab_begin);
      if (row[n] >= 0) ++start[row[n] + 1];
    }
    for (int64_t v = 0; v < V; ++v) start[v + 1] += start[v];
    std::vector<int64_t> order(static_cast<size_t>(start[V]));
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t n = 0; n < N; ++n)
      if (row[n] >= 0) order[fill[row[n]]++] = n;
    const float* g = dout.data<float>();
    float* dt = dtable.data<float>();
    chunks(V, 64, [&](int64_t b, int64_t e) {
      for (int64_t v = b; v < e; ++v)
        for (int64_t i = start[v]; i < start[v + 1]; ++i) axpy(dt + v * D, 1.0f, g + order[i] * D, D);
    });
  }

  void do_rmsnorm_forward(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& stored_w, float eps) override {
    const Tensor w = widened(stored_w);
    int64_t N = x.dim(0), D = x.dim(1);
    const float* xp = x.data<float>();
    const float* wp = w.data<float>();
    float* op = out.data<float>();
    float* rp = rstd.data<float>();
    chunks(N, 16, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) {
        const float* xr = xp + n * D;
        double ss = 0;
        for (int64_t i = 0; i < D; ++i) ss += static_cast<double>(xr[i]) * xr[i];
        float var = static_cast<float>(ss / static_cast<double>(D));
        float r = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var + eps)));
        rp[n] = r;
        float* orow = op + n * D;
        for (int64_t i = 0; i < D; ++i) orow[i] = wp[i] * (xr[i] * r);
      }
    });
  }

  void do_rmsnorm_backward(Tensor& dx, Tensor& dw, const Tensor& dout, const Tensor& x, const Tensor& stored_w,
                           const Tensor& rstd) override {
    const Tensor w = widened(stored_w);
    int64_t N = x.dim(0), D = x.dim(1);
    const float* xp = x.data<float>();
    const float* wp = w.data<float>();
    const float* gp = dout.data<float>();
    const float* rp = rstd.data<float>();
    float* dxp = dx.data<float>();
    float* dwp = dw.data<float>();
    // dx = r*(w⊙dy) - (r³/D)·(Σ w⊙dy⊙x)·x
    chunks(N, 16, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) {
        const float* xr = xp + n * D;
        const float* gr = gp + n * D;
        double s = 0;
        for (int64_t i = 0; i < D; ++i) s += static_cast<double>(wp[i] * gr[i]) * xr[i];
        double r = rp[n];
        float c = static_cast<float>(r * r * r * s / static_cast<double>(D));
        float rf = rp[n];
        float* dr = dxp + n * D;
        for (int64_t i = 0; i < D; ++i) dr[i] += rf * (wp[i] * gr[i]) - c * xr[i];
      }
    });
    // dw = Σ_rows dy ⊙ (x*r), by column blocks so each column is summed in row order by one task.
    chunks(D, 32, [&](int64_t b, int64_t e) {
      double acc[32] = {};
      for (int64_t n = 0; n < N; ++n) {
        const float* xr = xp + n * D;
        const float* gr = gp + n * D;
        float r = rp[n];
        for (int64_t i = b; i < e; ++i) acc[i - b] += static_cast<double>(gr[i]) * (xr[i] * r);
      }
      for (int64_t i = b; i < e; ++i) dwp[i] += static_cast<float>(acc[i - b]);
    });
  }

  void do_matmul_forward(Tensor& y, const Tensor& x, const Tensor& stored_w) override {
    const Tensor w = widened(stored_w);
    int64_t N = x.dim(0), I = x.dim(1), O = w.dim(0);
    if (N == 0 || O == 0) return;
    if (I == 0) {
      do_zero(y);
      return;
    }
    if (N == 1) {
      // One token (decoding): one dot product per output, split over outputs. sgemm would pack all
      // of W on every call (half the time of a decoding step), and OpenBLAS's threaded sgemv gives
      // different bits for different thread counts.
      const float* xp = x.data<float>();
      const float* wp = w.data<float>();
      float* yp = y.data<float>();
      chunks(O, 64, [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) yp[o] = dot(wp + o * I, xp, I);
      });
      return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, O, I, 1.0f, x.data<float>(), I, w.data<float>(), I,
                0.0f, y.data<float>(), O);
  }

  void do_matmul_add_forward(Tensor& y, const Tensor& residual, const Tensor& x, const Tensor& stored_w) override {
    const Tensor w = widened(stored_w);
    int64_t N = x.dim(0), I = x.dim(1), O = w.dim(0);
    if (residual.raw() != y.raw()) do_copy(y, residual);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, O, I, 1.0f, x.data<float>(), I, w.data<float>(), I,
                1.0f, y.data<float>(), O);
  }

  void do_matmul_backward(Tensor& dx, Tensor& dw, const Tensor& dy, const Tensor& x, const Tensor& stored_w,
                          Grad dx_mode, Grad dw_mode) override {
    const Tensor w = widened(stored_w);
    int64_t N = x.dim(0), I = x.dim(1), O = w.dim(0);
    if (I == 0) return;  // dx and dw are empty
    if (dx.defined())
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, I, O, 1.0f, dy.data<float>(), O, w.data<float>(),
                  I, grad_beta(dx_mode), dx.data<float>(), I);
    if (dw.defined())
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, I, N, 1.0f, dy.data<float>(), O, x.data<float>(), I,
                  grad_beta(dw_mode), dw.data<float>(), I);
  }

  void do_rope(Tensor& x, const Tensor& cos, const Tensor& sin, int64_t pos0, bool inverse) override {
    int64_t B = x.dim(0), T = x.dim(1), H = x.dim(2), hd = x.dim(3), half = hd / 2;
    float* xp = x.data<float>();
    const float* cp = cos.data<float>();
    const float* sp = sin.data<float>();
    chunks(B * T, 8, [&](int64_t b, int64_t e) {
      for (int64_t bt = b; bt < e; ++bt) {
        int64_t pos = pos0 + bt % T;
        const float* c = cp + pos * half;
        const float* s = sp + pos * half;
        for (int64_t h = 0; h < H; ++h) {
          float* v = xp + (bt * H + h) * hd;
          for (int64_t i = 0; i < half; ++i) {
            float x1 = v[i], x2 = v[i + half];
            if (!inverse) {  // (x1, x2) rotated by +angle
              v[i] = x1 * c[i] - x2 * s[i];
              v[i + half] = x2 * c[i] + x1 * s[i];
            } else {  // the transpose: rotated by -angle
              v[i] = x1 * c[i] + x2 * s[i];
              v[i + half] = x2 * c[i] - x1 * s[i];
            }
          }
        }
      }
    });
  }

  void do_attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v) override {
    int64_t B = q.dim(0), Tq = q.dim(1), H = q.dim(2), hd = q.dim(3), Tk = k.dim(1), KV = k.dim(2),
            group = H / KV, first = Tk - Tq;  // query t sits at position first + t
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
    const float* qp = q.data<float>();
    const float* kp = k.data<float>();
    const float* vp = v.data<float>();
    float* op = out.data<float>();
    float* lp = lse.data<float>();
    // One task per (batch, head).
    parallel_for(static_cast<size_t>(B * H), threads_, [&](size_t task) {
      int64_t b = static_cast<int64_t>(task) / H, h = static_cast<int64_t>(task) % H, g = h / group;
      std::vector<float> p(static_cast<size_t>(Tk));
      std::vector<float> acc(static_cast<size_t>(hd));
      for (int64_t t = 0; t < Tq; ++t) {
        const int64_t last = first + t;  // the last key this query attends
        const float* qt = qp + ((b * Tq + t) * H + h) * hd;
        float m = -INFINITY;
        for (int64_t s = 0; s <= last; ++s) {
          p[s] = dot(qt, kp + ((b * Tk + s) * KV + g) * hd, hd) * scale;
          m = std::max(m, p[s]);
        }
        double sum = 0;
        for (int64_t s = 0; s <= last; ++s) {
          p[s] = std::exp(p[s] - m);
          sum += p[s];
        }
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int64_t s = 0; s <= last; ++s) axpy(acc.data(), p[s], vp + ((b * Tk + s) * KV + g) * hd, hd);
        float inv = static_cast<float>(1.0 / sum);
        float* ot = op + ((b * Tq + t) * H + h) * hd;
        for (int64_t i = 0; i < hd; ++i) ot[i] = acc[i] * inv;
        lp[(b * H + h) * Tq + t] = m + static_cast<float>(std::log(sum));
      }
    });
  }

  void do_attention_backward(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout, const Tensor& q,
                             const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                             Grad mode) override {
    if (mode == Grad::kWrite)
      for (Tensor* g : {&dq, &dk, &dv}) do_zero(*g);
    int64_t B = q.dim(0), T = q.dim(1), H = q.dim(2), hd = q.dim(3), KV = k.dim(2), group = H / KV;
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
    const float* qp = q.data<float>();
    const float* kp = k.data<float>();
    const float* vp = v.data<float>();
    const float* op = out.data<float>();
    const float* gp = dout.data<float>();
    const float* lp = lse.data<float>();
    float* dqp = dq.data<float>();
    float* dkp = dk.data<float>();
    float* dvp = dv.data<float>();
    // One task per (batch, kv head): it alone writes that kv head's dk, dv and its query heads' dq.
    parallel_for(static_cast<size_t>(B * KV), threads_, [&](size_t task) {
      int64_t b = static_cast<int64_t>(task) / KV, g = static_cast<int64_t>(task) % KV;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        for (int64_t t = 0; t < T; ++t) {
          size_t row = static_cast<size_t>(((b * T + t) * H + h) * hd);
          const float* qt = qp + row;
          const float* gt = gp + row;
          float* dqt = dqp + row;
          float D = dot(gt, op + row, hd);  // Σ_s p_s (dout·v_s) = dout·out
          float l = lp[(b * H + h) * T + t];
          for (int64_t s = 0; s <= t; ++s) {
            size_t kv_row = static_cast<size_t>(((b * T + s) * KV + g) * hd);
            float p = std::exp(dot(qt, kp + kv_row, hd) * scale - l);
            float dp = dot(gt, vp + kv_row, hd);
            float ds = p * (dp - D) * scale;
            axpy(dvp + kv_row, p, gt, hd);
            axpy(dqt, ds, kp + kv_row, hd);
            axpy(dkp + kv_row, ds, qt, hd);
          }
        }
      }
    });
  }

  void do_swiglu_forward(Tensor& out, const Tensor& gate, const Tensor& up) override {
    const float* g = gate.data<float>();
    const float* u = up.data<float>();
    float* o = out.data<float>();
    chunks(gate.numel(), 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    });
  }

  void do_swiglu_backward(Tensor& dgate, Tensor& dup, const Tensor& dout, const Tensor& gate,
                          const Tensor& up) override {
    const float* g = gate.data<float>();
    const float* u = up.data<float>();
    const float* d = dout.data<float>();
    float* dg = dgate.data<float>();
    float* du = dup.data<float>();
    chunks(gate.numel(), 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        float sig = 1.0f / (1.0f + std::exp(-g[i]));
        float silu = g[i] * sig;
        dg[i] = d[i] * u[i] * (sig * (1.0f + g[i] * (1.0f - sig)));
        du[i] = d[i] * silu;
      }
    });
  }

  void do_add(Tensor& out, const Tensor& a, const Tensor& b) override {
    const float* ap = a.data<float>();
    const float* bp = b.data<float>();
    float* o = out.data<float>();
    chunks(out.numel(), 16384, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) o[i] = ap[i] + bp[i];
    });
  }

  void do_scale(Tensor& t, float s) override {
    float* p = t.data<float>();
    chunks(t.numel(), 16384, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] *= s;
    });
  }

  // The logit column of target y, -1 when the row has no one-hot term here: an ignored row (y < 0)
  // or, in the vocabulary-parallel form (vocab_begin >= 0), a target in another rank's shard.
  static int64_t target_column(int32_t y, int64_t n, int64_t V, int64_t vocab_begin) {
    if (y < 0) return -1;
    if (vocab_begin < 0) {
      if (y >= V) fail("cross_entropy: target ", y, " at position ", n, " is outside [0, ", V, ")");
      return y;
    }
    const int64_t col = static_cast<int64_t>(y) - vocab_begin;
    return col < V ? col : -1;  // col < 0 also means elsewhere
  }

  void do_cross_entropy_forward(Tensor& losses, Tensor& lse, const Tensor& logits, const Tensor& targets,
                                int64_t vocab_begin) override {
    int64_t N = logits.dim(0), V = logits.dim(1);
    const float* x = logits.data<float>();
    const int32_t* y = targets.data<int32_t>();
    std::vector<int64_t> col(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) col[n] = std::max<int64_t>(-1, target_column(y[n], n, V, vocab_begin));
    float* lo = losses.data<float>();
    float* ls = lse.data<float>();
    chunks(N, 4, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) {
        const float* row = x + n * V;
        float m = -INFINITY;
        for (int64_t j = 0; j < V; ++j) m = std::max(m, row[j]);
        double sum = 0;
        for (int64_t j = 0; j < V; ++j) sum += std::exp(row[j] - m);
        double l = static_cast<double>(m) + std::log(sum);
        ls[n] = static_cast<float>(l);
        lo[n] = col[n] < 0 ? 0.0f : static_cast<float>(l - static_cast<double>(row[col[n]]));
      }
    });
  }

  void do_cross_entropy_backward(Tensor& dlogits, const Tensor& logits, const Tensor& lse, const Tensor& targets,
                                 float scale, int64_t vocab_begin) override {
    int64_t N = logits.dim(0), V = logits.dim(1);
    const float* x = logits.data<float>();
    const int32_t* y = targets.data<int32_t>();
    std::vector<int64_t> col(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) col[n] = std::max<int64_t>(-1, target_column(y[n], n, V, vocab_begin));
    const float* ls = lse.data<float>();
    float* d = dlogits.data<float>();  // may alias x: each element is read before it is written
    chunks(N, 4, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) {
        const float* row = x + n * V;
        float* drow = d + n * V;
        if (y[n] < 0) {
          std::fill(drow, drow + V, 0.0f);
          continue;
        }
        float l = ls[n];
        for (int64_t j = 0; j < V; ++j) drow[j] = std::exp(row[j] - l) * scale;
        if (col[n] >= 0) drow[col[n]] -= scale;
      }
    });
  }

  double do_sum_squares(std::span<const Tensor> tensors) override {
    const int64_t grain = 1 << 16;
    double total = 0;
    for (const Tensor& t : tensors) {
      int64_t n = t.numel();
      int64_t count = (n + grain - 1) / grain;
      std::vector<double> partial(static_cast<size_t>(count), 0.0);
      const float* p = t.data<float>();
      chunks(n, grain, [&](int64_t b, int64_t e) {
        double s = 0;
        for (int64_t i = b; i < e; ++i) s += static_cast<double>(p[i]) * p[i];
        partial[static_cast<size_t>(b / grain)] = s;
      });
      for (double s : partial) total += s;
    }
    return total;
  }

  void do_adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) override {
    // The arithmetic of torch.optim.AdamW (single-tensor path): scalars computed in double on the
    // host, rounded to float where torch hands them to a float kernel.
    double bias1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.step));
    double bias2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.step));
    const float decay = static_cast<float>(1.0 - s.lr * s.weight_decay);
    const float w1 = static_cast<float>(1.0 - s.beta1);
    const float b2 = static_cast<float>(s.beta2);
    const float w2 = static_cast<float>(1.0 - s.beta2);
    const float step_size = static_cast<float>(-(s.lr / bias1));
    const float bias2_sqrt = static_cast<float>(std::sqrt(bias2));
    const float eps = static_cast<float>(s.eps);
    const float gs = s.grad_scale;
    float* p = param.data<float>();
    const float* g = grad.data<float>();
    float* mp = m.data<float>();
    float* vp = v.data<float>();
    chunks(param.numel(), 16384, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        float gi = g[i] * gs;
        float pi = p[i] * decay;
        float mi = mp[i] + w1 * (gi - mp[i]);
        float vi = vp[i] * b2 + w2 * gi * gi;
        float denom = std::sqrt(vi) / bias2_sqrt + eps;
        p[i] = pi + step_size * mi / denom;
        mp[i] = mi;
        vp[i] = vi;
      }
    });
  }

 private:
  int threads_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

}  // namespace agpt::ops
