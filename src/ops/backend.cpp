// The checks every backend shares: shapes, dtypes, devices, aliasing. Backends implement do_*.
#include "ops/backend.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "base/error.h"

namespace agpt::ops {
namespace {

// Fails with "op: what is f32[2, 3], expected f32[...]" style messages.
void expect_shape(const char* op, const char* what, const Tensor& t, const Shape& shape,
                  DType dtype = DType::kF32) {
  if (!t.defined()) fail(op, ": ", what, " is undefined");
  if (t.shape() != shape || t.dtype() != dtype)
    fail(op, ": ", what, " is ", t.describe(), ", expected ", dtype_name(dtype), shape_string(shape));
}

void expect_rank(const char* op, const char* what, const Tensor& t, int rank, DType dtype = DType::kF32) {
  if (!t.defined()) fail(op, ": ", what, " is undefined");
  if (t.rank() != rank || t.dtype() != dtype)
    fail(op, ": ", what, " is ", t.describe(), ", expected a ", dtype_name(dtype), " tensor of rank ",
         rank);
}

// A weight (Linear weight, embedding table, norm weight): fp32, or bf16 where the model keeps
// bf16 parameters (train.param_dtype); its gradient is fp32 either way.
void expect_weight(const char* op, const char* what, const Tensor& t, const Shape* shape, int rank) {
  if (!t.defined()) fail(op, ": ", what, " is undefined");
  const bool type_ok = t.dtype() == DType::kF32 || t.dtype() == DType::kBF16;
  if (shape ? t.shape() != *shape || !type_ok : t.rank() != rank || !type_ok)
    fail(op, ": ", what, " is ", t.describe(), ", expected an f32 or bf16 ",
         shape ? shape_string(*shape) : cat("tensor of rank ", rank));
}

}  // namespace

Tensor Backend::widened(const Tensor& t) {
  if (t.dtype() == DType::kF32) return t;
  Tensor wide = empty(t.shape(), DType::kF32);
  do_cast(wide, t);
  return wide;
}

void Backend::check_device(const char* op, const Tensor& t, const char* what) const {
  if (t.defined() && t.device() != device())
    fail(op, ": ", what, " lives on ", device_name(t.device()), ", this backend is ", name());
}

void Backend::check_devices(const char* op, std::initializer_list<const Tensor*> tensors) const {
  for (const Tensor* t : tensors) check_device(op, *t, "a tensor");
}

Tensor Backend::empty(const Shape& shape, DType dtype) {
  int64_t n = shape_numel(shape);
  size_t bytes = static_cast<size_t>(n) * dtype_size(dtype);
  return Tensor(do_allocate(bytes), shape, dtype);
}

Tensor Backend::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  do_zero(t);
  return t;
}

void Backend::zero(Tensor& t) {
  if (!t.defined()) fail("zero: tensor is undefined");
  check_device("zero", t, "tensor");
  do_zero(t);
}

void Backend::copy(Tensor& dst, const Tensor& src) {
  expect_shape("copy", "dst", dst, src.shape(), src.dtype());
  check_device("copy", dst, "dst");
  check_device("copy", src, "src");
  if (dst.same_storage(src)) {
    // Views of one buffer: the same view is a no-op, disjoint rows copy, overlapping ones are a bug.
    if (dst.offset() == src.offset()) return;
    size_t lo = std::min(dst.offset(), src.offset()), hi = std::max(dst.offset(), src.offset());
    if (hi - lo < src.bytes()) fail("copy: dst and src are overlapping views of one buffer");
  }
  do_copy(dst, src);
}

void Backend::upload(Tensor& dst, const void* host, size_t bytes) {
  if (!dst.defined()) fail("upload: tensor is undefined");
  if (bytes != dst.bytes()) fail("upload: ", bytes, " bytes for tensor ", dst.describe(), " of ", dst.bytes());
  check_device("upload", dst, "dst");
  if (bytes) do_upload(dst, host);
}

void Backend::download(const Tensor& src, void* host, size_t bytes) const {
  if (!src.defined()) fail("download: tensor is undefined");
  if (bytes != src.bytes())
    fail("download: ", bytes, " bytes for tensor ", src.describe(), " of ", src.bytes());
  check_device("download", src, "src");
  if (bytes) do_download(src, host);
}

Tensor Backend::from_host(const Shape& shape, std::span<const float> values) {
  Tensor t = empty(shape, DType::kF32);
  upload(t, values.data(), values.size_bytes());
  return t;
}

Tensor Backend::from_host(const Shape& shape, std::span<const int32_t> values) {
  Tensor t = empty(shape, DType::kI32);
  upload(t, values.data(), values.size_bytes());
  return t;
}

std::vector<float> Backend::to_host_f32(const Tensor& t) const {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  if (t.dtype() == DType::kBF16) {
    std::vector<uint16_t> raw(out.size());
    download(t, raw.data(), raw.size() * sizeof(uint16_t));
    for (size_t i = 0; i < raw.size(); ++i) out[i] = bf16_to_f32(raw[i]);
    return out;
  }
  if (t.dtype() != DType::kF32) fail("to_host_f32: tensor is ", t.describe());
  download(t, out.data(), out.size() * sizeof(float));
  return out;
}

Tensor Backend::from_host(const Shape& shape, std::span<const float> values, DType dtype) {
  if (dtype == DType::kF32) return from_host(shape, values);
  if (dtype != DType::kBF16) fail("from_host: cannot convert floats to ", dtype_name(dtype));
  std::vector<uint16_t> raw(values.size());
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = f32_to_bf16(values[i]);
  Tensor t = empty(shape, DType::kBF16);
  upload(t, raw.data(), raw.size() * sizeof(uint16_t));
  return t;
}

void Backend::do_cast(Tensor& dst, const Tensor& src) {
  fail("cast: the ", name(), " backend has no ", dtype_name(dst.dtype() == DType::kF32 ? src.dtype() : dst.dtype()), " tensors");
}

void Backend::cast(Tensor& dst, const Tensor& src) {
  if (!dst.defined() || !src.defined()) fail("cast: a tensor is undefined");
  if (dst.shape() != src.shape()) fail("cast: ", src.describe(), " into ", dst.describe());
  for (const Tensor* t : {static_cast<const Tensor*>(&dst), &src})
    if (t->dtype() == DType::kI32) fail("cast: ", t->describe(), " is not a floating-point tensor");
  check_devices("cast", {&dst, &src});
  if (dst.dtype() == src.dtype()) return copy(dst, src);
  do_cast(dst, src);
}

std::vector<int32_t> Backend::to_host_i32(const Tensor& t) const {
  if (t.dtype() != DType::kI32) fail("to_host_i32: tensor is ", t.describe());
  std::vector<int32_t> out(static_cast<size_t>(t.numel()));
  download(t, out.data(), out.size() * sizeof(int32_t));
  return out;
}

void Backend::embedding_forward(Tensor& out, const Tensor& ids, const Tensor& table, int64_t vocab_begin) {
  const char* op = "embedding_forward";
  expect_weight(op, "table", table, nullptr, 2);
  expect_rank(op, "ids", ids, 1, DType::kI32);
  expect_shape(op, "out", out, {ids.dim(0), table.dim(1)}, activation_dtype());
  check_devices(op, {&out, &ids, &table});
  do_embedding_forward(out, ids, table, vocab_begin);
}

void Backend::embedding_backward(Tensor& dtable, const Tensor& ids, const Tensor& dout, int64_t vocab_begin) {
  const char* op = "embedding_backward";
  expect_rank(op, "dtable", dtable, 2);
  expect_rank(op, "ids", ids, 1, DType::kI32);
  expect_shape(op, "dout", dout, {ids.dim(0), dtable.dim(1)}, activation_dtype());
  check_devices(op, {&dtable, &ids, &dout});
  do_embedding_backward(dtable, ids, dout, vocab_begin);
}

void Backend::rmsnorm_forward(Tensor& out, Tensor& rstd, const Tensor& x, const Tensor& w, float eps) {
  const char* op = "rmsnorm_forward";
  const DType act = activation_dtype();
  expect_rank(op, "x", x, 2, act);
  const Shape norm_shape{x.dim(1)};
  expect_weight(op, "w", w, &norm_shape, 1);
  expect_shape(op, "out", out, x.shape(), act);
  expect_shape(op, "rstd", rstd, {x.dim(0)});
  if (out.same_storage(x)) fail(op, ": out must not alias x (x is needed for backward)");
  check_devices(op, {&out, &rstd, &x, &w});
  do_rmsnorm_forward(out, rstd, x, w, eps);
}

void Backend::rmsnorm_backward(Tensor& dx, Tensor& dw, const Tensor& dout, const Tensor& x, const Tensor& w,
                               const Tensor& rstd) {
  const char* op = "rmsnorm_backward";
  const DType act = activation_dtype();
  expect_rank(op, "x", x, 2, act);
  const Shape norm_shape{x.dim(1)};
  expect_weight(op, "w", w, &norm_shape, 1);
  expect_shape(op, "dx", dx, x.shape(), act);
  expect_shape(op, "dw", dw, w.shape());  // fp32 whatever w's type
  expect_shape(op, "dout", dout, x.shape(), act);
  expect_shape(op, "rstd", rstd, {x.dim(0)});
  if (dx.same_storage(dout)) fail(op, ": dx must not alias dout");
  check_devices(op, {&dx, &dw, &dout, &x, &w, &rstd});
  do_rmsnorm_backward(dx, dw, dout, x, w, rstd);
}

namespace {
// x [N, I] (activations) and a Linear weight w [O, I]; `out` [N, O] (y or dy) of type `act`.
void check_linear(const char* op, const char* out_name, const Tensor& out, const Tensor& x, const Tensor& w,
                  DType act) {
  expect_rank(op, "x", x, 2, act);
  expect_weight(op, "w", w, nullptr, 2);
  if (w.dim(1) != x.dim(1))
    fail(op, ": x ", x.describe(), " and weight ", w.describe(), " disagree on the input size");
  expect_shape(op, out_name, out, {x.dim(0), w.dim(0)}, act);
}
}  // namespace

void Backend::matmul_forward(Tensor& y, const Tensor& x, const Tensor& w) {
  const char* op = "matmul_forward";
  check_linear(op, "y", y, x, w, activation_dtype());
  if (y.same_storage(x) || y.same_storage(w)) fail(op, ": y must not alias an input");
  check_devices(op, {&y, &x, &w});
  do_matmul_forward(y, x, w);
}

void Backend::matmul_add_forward(Tensor& y, const Tensor& residual, const Tensor& x, const Tensor& w) {
  const char* op = "matmul_add_forward";
  check_linear(op, "y", y, x, w, activation_dtype());
  expect_shape(op, "residual", residual, y.shape(), activation_dtype());
  if (y.same_storage(x) || y.same_storage(w)) fail(op, ": y must not alias an input");
  if (residual.same_storage(y) && residual.raw() != y.raw()) fail(op, ": residual must be y itself or apart from it");
  check_devices(op, {&y, &residual, &x, &w});
  if (y.numel() == 0) return;
  if (x.dim(1) == 0) {  // an empty product: y = residual
    if (residual.raw() != y.raw()) do_copy(y, residual);
    return;
  }
  do_matmul_add_forward(y, residual, x, w);
}

void Backend::matmul_backward(Tensor& dx, Tensor& dw, const Tensor& dy, const Tensor& x, const Tensor& w,
                              Grad dx_mode, Grad dw_mode) {
  const char* op = "matmul_backward";
  const DType act = activation_dtype();
  check_linear(op, "dy", dy, x, w, act);
  if (dx.defined()) expect_shape(op, "dx", dx, x.shape(), act);
  if (dw.defined()) expect_shape(op, "dw", dw, w.shape());
  if (dx.defined() && (dx.same_storage(dy) || dx.same_storage(w))) fail(op, ": dx must not alias dy or w");
  if (dw.defined() && (dw.same_storage(dy) || dw.same_storage(x))) fail(op, ": dw must not alias dy or x");
  check_devices(op, {&dx, &dw, &dy, &x, &w});
  if (dy.numel() == 0) {  // an empty sum over N or O: written gradients are zero, added ones unchanged
    if (dx.defined() && dx_mode == Grad::kWrite) do_zero(dx);
    if (dw.defined() && dw_mode == Grad::kWrite) do_zero(dw);
    return;
  }
  do_matmul_backward(dx, dw, dy, x, w, dx_mode, dw_mode);
}

void Backend::matmul_backward_shared(Tensor& dx, const Tensor& x, std::span<const LinearGrad> layers, Grad dx_mode,
                                     Grad dw_mode) {
  const char* op = "matmul_backward_shared";
  const DType act = activation_dtype();
  if (layers.empty()) fail(op, ": no layers");
  expect_shape(op, "dx", dx, x.shape(), act);
  for (const LinearGrad& l : layers) {
    if (!l.dy || !l.w) fail(op, ": a layer without dy or w");
    check_linear(op, "dy", *l.dy, x, *l.w, act);
    if (l.dw && l.dw->defined()) {
      expect_shape(op, "dw", *l.dw, l.w->shape());
      if (l.dw->same_storage(*l.dy) || l.dw->same_storage(x)) fail(op, ": dw must not alias dy or x");
      check_devices(op, {l.dw});
    }
    if (dx.same_storage(*l.dy) || dx.same_storage(*l.w)) fail(op, ": dx must not alias dy or w");
    check_devices(op, {l.dy, l.w});
  }
  check_devices(op, {&dx, &x});
  do_matmul_backward_shared(dx, x, layers, dx_mode, dw_mode);
}

void Backend::do_matmul_backward_shared(Tensor& dx, const Tensor& x, std::span<const LinearGrad> layers, Grad dx_mode,
                                        Grad dw_mode) {
  for (size_t i = 0; i < layers.size(); ++i) {
    Tensor none;
    Tensor& dw = layers[i].dw ? *layers[i].dw : none;
    matmul_backward(dx, dw, *layers[i].dy, x, *layers[i].w, i == 0 ? dx_mode : Grad::kAdd, dw_mode);
  }
}

namespace {
void check_rope(const char* op, const Tensor& x, const Tensor& cos, const Tensor& sin, int64_t pos0, DType act) {
  expect_rank(op, "x", x, 4, act);
  int64_t hd = x.dim(3);
  if (hd % 2 != 0) fail(op, ": head dim ", hd, " is odd");
  expect_rank(op, "cos", cos, 2);
  if (cos.dim(1) != hd / 2) fail(op, ": cos is ", cos.describe(), ", expected [P, ", hd / 2, "]");
  expect_shape(op, "sin", sin, cos.shape());
  if (pos0 < 0 || pos0 + x.dim(1) > cos.dim(0))
    fail(op, ": positions ", pos0, "..", pos0 + x.dim(1) - 1, " exceed the table of ", cos.dim(0));
}
}  // namespace

void Backend::rope_forward(Tensor& x, const Tensor& cos, const Tensor& sin, int64_t pos0) {
  check_rope("rope_forward", x, cos, sin, pos0, activation_dtype());
  check_devices("rope_forward", {&x, &cos, &sin});
  do_rope(x, cos, sin, pos0, false);
}

void Backend::rope_backward(Tensor& dx, const Tensor& cos, const Tensor& sin, int64_t pos0) {
  check_rope("rope_backward", dx, cos, sin, pos0, activation_dtype());
  check_devices("rope_backward", {&dx, &cos, &sin});
  do_rope(dx, cos, sin, pos0, true);
}

namespace {
// q [B, Tq, H, hd]; k, v [B, Tk, KV, hd] with Tk >= Tq and H a multiple of KV.
void check_attention(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, DType act) {
  expect_rank(op, "q", q, 4, act);
  expect_rank(op, "k", k, 4, act);
  int64_t B = q.dim(0), Tq = q.dim(1), H = q.dim(2), hd = q.dim(3), Tk = k.dim(1), KV = k.dim(2);
  expect_shape(op, "k", k, {B, Tk, KV, hd}, act);
  expect_shape(op, "v", v, {B, Tk, KV, hd}, act);
  if (Tk < Tq)
    fail(op, ": ", Tq, " queries but only ", Tk, " keys (the queries are the last Tq of the Tk positions)");
  if (KV == 0 || H % KV != 0) fail(op, ": ", H, " query heads are not a multiple of ", KV, " kv heads");
}
}  // namespace

void Backend::attention_forward(Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v) {
  const char* op = "attention_forward";
  const DType act = activation_dtype();
  check_attention(op, q, k, v, act);
  expect_shape(op, "out", out, q.shape(), act);
  expect_shape(op, "lse", lse, {q.dim(0), q.dim(2), q.dim(1)});
  for (const Tensor* in : {&q, &k, &v})
    if (out.same_storage(*in)) fail(op, ": out must not alias q, k or v");
  check_devices(op, {&out, &lse, &q, &k, &v});
  do_attention_forward(out, lse, q, k, v);
}

void Backend::attention_backward(Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout, const Tensor& q,
                                 const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse, Grad mode) {
  const char* op = "attention_backward";
  const DType act = activation_dtype();
  check_attention(op, q, k, v, act);
  if (k.dim(1) != q.dim(1))
    fail(op, ": needs as many keys as queries (training attends a whole sequence), got ", q.dim(1),
         " queries and ", k.dim(1), " keys");
  expect_shape(op, "dq", dq, q.shape(), act);
  expect_shape(op, "dk", dk, k.shape(), act);
  expect_shape(op, "dv", dv, v.shape(), act);
  expect_shape(op, "dout", dout, q.shape(), act);
  expect_shape(op, "out", out, q.shape(), act);
  expect_shape(op, "lse", lse, {q.dim(0), q.dim(2), q.dim(1)});
  check_devices(op, {&dq, &dk, &dv, &dout, &q, &k, &v, &out, &lse});
  do_attention_backward(dq, dk, dv, dout, q, k, v, out, lse, mode);
}

void Backend::swiglu_forward(Tensor& out, const Tensor& gate, const Tensor& up) {
  const char* op = "swiglu_forward";
  const DType act = activation_dtype();
  expect_rank(op, "gate", gate, 2, act);
  expect_shape(op, "up", up, gate.shape(), act);
  expect_shape(op, "out", out, gate.shape(), act);
  if (out.same_storage(gate) || out.same_storage(up)) fail(op, ": out must not alias gate or up");
  check_devices(op, {&out, &gate, &up});
  do_swiglu_forward(out, gate, up);
}

void Backend::swiglu_backward(Tensor& dgate, Tensor& dup, const Tensor& dout, const Tensor& gate,
                              const Tensor& up) {
  const char* op = "swiglu_backward";
  const DType act = activation_dtype();
  expect_rank(op, "gate", gate, 2, act);
  expect_shape(op, "dgate", dgate, gate.shape(), act);
  expect_shape(op, "dup", dup, gate.shape(), act);
  expect_shape(op, "up", up, gate.shape(), act);
  expect_shape(op, "dout", dout, gate.shape(), act);
  if (dgate.same_storage(dup)) fail(op, ": dgate and dup must be different tensors");
  check_devices(op, {&dgate, &dup, &dout, &gate, &up});
  do_swiglu_backward(dgate, dup, dout, gate, up);
}

void Backend::qkv_rope_forward(Tensor& q, Tensor& k, Tensor& v, const Tensor& x, const Tensor& wq, const Tensor& wk,
                               const Tensor& wv, const Tensor& cos, const Tensor& sin, int64_t pos0) {
  const char* op = "qkv_rope_forward";
  const DType a = activation_dtype();
  check_rope(op, q, cos, sin, pos0, a);
  check_rope(op, k, cos, sin, pos0, a);
  expect_shape(op, "v", v, k.shape(), a);
  if (k.dim(0) != q.dim(0) || k.dim(1) != q.dim(1) || k.dim(3) != q.dim(3))
    fail(op, ": q ", q.describe(), " and k ", k.describe(), " disagree on batch, length or head size");
  const int64_t N = q.dim(0) * q.dim(1);
  Tensor q2 = q.reshape({N, q.dim(2) * q.dim(3)}), k2 = k.reshape({N, k.dim(2) * k.dim(3)}),
         v2 = v.reshape({N, v.dim(2) * v.dim(3)});
  check_linear(op, "q", q2, x, wq, a);
  check_linear(op, "k", k2, x, wk, a);
  check_linear(op, "v", v2, x, wv, a);
  for (const Tensor* out : {&q, &k, &v})
    if (out->same_storage(x) || out->same_storage(wq) || out->same_storage(wk) || out->same_storage(wv))
      fail(op, ": q, k and v must not alias x or the weights");
  if (q.same_storage(k) || q.same_storage(v) || k.same_storage(v)) fail(op, ": q, k and v must be apart");
  check_devices(op, {&q, &k, &v, &x, &wq, &wk, &wv, &cos, &sin});
  do_qkv_rope_forward(q, k, v, x, wq, wk, wv, cos, sin, pos0);
}

void Backend::do_qkv_rope_forward(Tensor& q, Tensor& k, Tensor& v, const Tensor& x, const Tensor& wq, const Tensor& wk,
                                  const Tensor& wv, const Tensor& cos, const Tensor& sin, int64_t pos0) {
  const int64_t N = x.dim(0);
  Tensor q2 = q.reshape({N, q.dim(2) * q.dim(3)}), k2 = k.reshape({N, k.dim(2) * k.dim(3)}),
         v2 = v.reshape({N, v.dim(2) * v.dim(3)});
  matmul_forward(q2, x, wq);
  matmul_forward(k2, x, wk);
  matmul_forward(v2, x, wv);
  rope_forward(q, cos, sin, pos0);
  rope_forward(k, cos, sin, pos0);
}

void Backend::swiglu_matmul_forward(Tensor& act, Tensor& gate, Tensor& up, const Tensor& x, const Tensor& wg,
                                    const Tensor& wu) {
  const char* op = "swiglu_matmul_forward";
  const DType a = activation_dtype();
  check_linear(op, "gate", gate, x, wg, a);
  check_linear(op, "up", up, x, wu, a);
  expect_shape(op, "act", act, gate.shape(), a);
  for (const Tensor* out : {&act, &gate, &up})
    if (out->same_storage(x) || out->same_storage(wg) || out->same_storage(wu)) fail(op, ": act, gate and up must not alias x, wg or wu");
  if (act.same_storage(gate) || act.same_storage(up) || gate.same_storage(up)) fail(op, ": the outputs must be apart");
  check_devices(op, {&act, &gate, &up, &x, &wg, &wu});
  do_swiglu_matmul_forward(act, gate, up, x, wg, wu);
}

void Backend::swiglu_matmul_backward(Tensor& dgate, Tensor& dup, Tensor& dact, Tensor& dwd, const Tensor& dy,
                                     const Tensor& act, const Tensor& wd, const Tensor& gate, const Tensor& up,
                                     Grad dw_mode) {
  const char* op = "swiglu_matmul_backward";
  const DType a = activation_dtype();
  check_linear(op, "dy", dy, act, wd, a);
  const std::pair<const char*, const Tensor*> nf[] = {{"dgate", &dgate}, {"dup", &dup}, {"dact", &dact}, {"gate", &gate},
                                                      {"up", &up}};
  for (auto [name, t] : nf) expect_shape(op, name, *t, act.shape(), a);
  if (dwd.defined()) expect_shape(op, "dwd", dwd, wd.shape());
  if (dgate.same_storage(dup) || dact.same_storage(dgate) || dact.same_storage(dup))
    fail(op, ": dgate, dup and dact must be different tensors");
  check_devices(op, {&dgate, &dup, &dact, &dwd, &dy, &act, &wd, &gate, &up});
  do_swiglu_matmul_backward(dgate, dup, dact, dwd, dy, act, wd, gate, up, dw_mode);
}

void Backend::do_swiglu_matmul_forward(Tensor& act, Tensor& gate, Tensor& up, const Tensor& x, const Tensor& wg,
                                       const Tensor& wu) {
  matmul_forward(gate, x, wg);
  matmul_forward(up, x, wu);
  swiglu_forward(act, gate, up);
}

void Backend::do_swiglu_matmul_backward(Tensor& dgate, Tensor& dup, Tensor& dact, Tensor& dwd, const Tensor& dy,
                                        const Tensor& act, const Tensor& wd, const Tensor& gate, const Tensor& up,
                                        Grad dw_mode) {
  matmul_backward(dact, dwd, dy, act, wd, Grad::kWrite, dw_mode);
  swiglu_backward(dgate, dup, dact, gate, up);
}

void Backend::add(Tensor& out, const Tensor& a, const Tensor& b) {
  const char* op = "add";
  if (!a.defined() || (a.dtype() != DType::kF32 && a.dtype() != activation_dtype())) fail(op, ": a is ", a.describe());
  expect_shape(op, "b", b, a.shape(), a.dtype());
  expect_shape(op, "out", out, a.shape(), a.dtype());
  check_devices(op, {&out, &a, &b});
  do_add(out, a, b);
}

void Backend::scale(Tensor& t, float s) {
  if (!t.defined() || (t.dtype() != DType::kF32 && t.dtype() != activation_dtype()))
    fail("scale: tensor is ", t.describe());
  check_device("scale", t, "tensor");
  do_scale(t, s);
}

void Backend::cross_entropy_forward(Tensor& losses, Tensor& lse, const Tensor& logits, const Tensor& targets,
                                    int64_t vocab_begin) {
  const char* op = "cross_entropy_forward";
  expect_rank(op, "logits", logits, 2, activation_dtype());
  expect_shape(op, "targets", targets, {logits.dim(0)}, DType::kI32);
  expect_shape(op, "losses", losses, {logits.dim(0)});
  expect_shape(op, "lse", lse, {logits.dim(0)});
  check_devices(op, {&losses, &lse, &logits, &targets});
  do_cross_entropy_forward(losses, lse, logits, targets, vocab_begin);
}

void Backend::cross_entropy_backward(Tensor& dlogits, const Tensor& logits, const Tensor& lse,
                                     const Tensor& targets, float scale, int64_t vocab_begin) {
  const char* op = "cross_entropy_backward";
  expect_rank(op, "logits", logits, 2, activation_dtype());
  expect_shape(op, "dlogits", dlogits, logits.shape(), activation_dtype());
  expect_shape(op, "targets", targets, {logits.dim(0)}, DType::kI32);
  expect_shape(op, "lse", lse, {logits.dim(0)});
  check_devices(op, {&dlogits, &logits, &lse, &targets});
  do_cross_entropy_backward(dlogits, logits, lse, targets, scale, vocab_begin);
}

void Backend::cross_entropy_forward_backward(Tensor& losses, Tensor& lse, Tensor& dlogits, const Tensor& logits,
                                             const Tensor& targets, float scale) {
  const char* op = "cross_entropy_forward_backward";
  expect_rank(op, "logits", logits, 2, activation_dtype());
  expect_shape(op, "dlogits", dlogits, logits.shape(), activation_dtype());
  expect_shape(op, "targets", targets, {logits.dim(0)}, DType::kI32);
  expect_shape(op, "losses", losses, {logits.dim(0)});
  expect_shape(op, "lse", lse, {logits.dim(0)});
  check_devices(op, {&losses, &lse, &dlogits, &logits, &targets});
  do_cross_entropy_forward_backward(losses, lse, dlogits, logits, targets, scale);
}

void Backend::do_cross_entropy_forward_backward(Tensor& losses, Tensor& lse, Tensor& dlogits, const Tensor& logits,
                                                const Tensor& targets, float scale) {
  do_cross_entropy_forward(losses, lse, logits, targets, -1);
  do_cross_entropy_backward(dlogits, logits, lse, targets, scale, -1);
}

double Backend::sum_squares(std::span<const Tensor> tensors) {
  for (const Tensor& t : tensors) {
    if (!t.defined() || t.dtype() != DType::kF32) fail("sum_squares: tensor is ", t.describe());
    check_device("sum_squares", t, "tensor");
  }
  return do_sum_squares(tensors);
}

void Backend::adamw(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWStep& s) {
  const char* op = "adamw";
  if (!param.defined() || param.dtype() != DType::kF32) fail(op, ": param is ", param.describe());
  expect_shape(op, "grad", grad, param.shape());
  expect_shape(op, "m", m, param.shape());
  expect_shape(op, "v", v, param.shape());
  if (s.step < 1) fail(op, ": step must be >= 1, got ", s.step);
  check_devices(op, {&param, &grad, &m, &v});
  do_adamw(param, grad, m, v, s);
}

void Backend::check_adamw_items(const char* op, std::span<const AdamWItem> items) const {
  for (const AdamWItem& it : items) {
    if (!it.param || !it.grad || !it.m || !it.v) fail(op, ": an item lacks a tensor");
    if (!it.param->defined() || it.param->dtype() != DType::kF32) fail(op, ": param is ", it.param->describe());
    expect_shape(op, "grad", *it.grad, it.param->shape());
    expect_shape(op, "m", *it.m, it.param->shape());
    expect_shape(op, "v", *it.v, it.param->shape());
    check_devices(op, {it.param, it.grad, it.m, it.v});
  }
}

void Backend::adamw_many(std::span<const AdamWItem> items, const AdamWStep& s) {
  const char* op = "adamw_many";
  if (s.step < 1) fail(op, ": step must be >= 1, got ", s.step);
  check_adamw_items(op, items);
  do_adamw_many(items, s);
}

void Backend::prepare_adamw_many(std::span<const AdamWItem> items, const AdamWStep& s) {
  check_adamw_items("prepare_adamw_many", items);
  do_prepare_adamw_many(items, s);
}

void Backend::do_prepare_adamw_many(std::span<const AdamWItem>, const AdamWStep&) {}

void Backend::arrange_update_in_backward(std::span<const AdamWItem> items, const AdamWStep&) {
  arranged_updates_ = items.size();
}

std::vector<bool> Backend::take_updated_in_backward() {
  std::vector<bool> none(arranged_updates_, false);
  arranged_updates_ = 0;
  return none;
}

void Backend::do_adamw_many(std::span<const AdamWItem> items, const AdamWStep& s) {
  for (const AdamWItem& it : items) {
    AdamWStep one = s;
    one.weight_decay = it.weight_decay;
    do_adamw(*it.param, *it.grad, *it.m, *it.v, one);
  }
}

std::shared_ptr<float[]> Backend::allocate_host_f32(size_t count) {
  return std::shared_ptr<float[]>(new float[count]());
}

void Backend::adamw_host_moments(std::span<const HostMomentsItem> items, const AdamWStep& s) {
  const char* op = "adamw_host_moments";
  if (s.step < 1) fail(op, ": step must be >= 1, got ", s.step);
  for (const HostMomentsItem& it : items) {
    if (!it.param || !it.grad || !it.param->defined() || it.param->dtype() != DType::kF32)
      fail(op, ": an item's param is missing or not fp32");
    expect_shape(op, "grad", *it.grad, it.param->shape());
    if (it.param->numel() > 0 && (!it.m || !it.v)) fail(op, ": an item has no host moments");
    check_devices(op, {it.param, it.grad});
  }
  do_adamw_host_moments(items, s);
}

void Backend::do_adamw_host_moments(std::span<const HostMomentsItem> items, const AdamWStep& s) {
  for (const HostMomentsItem& it : items) {
    const size_t bytes = it.param->bytes();
    Tensor m = empty(it.param->shape()), v = empty(it.param->shape());
    upload(m, it.m, bytes);
    upload(v, it.v, bytes);
    AdamWStep one = s;
    one.weight_decay = it.weight_decay;
    one.weight_copy = false;
    do_adamw(*it.param, *it.grad, m, v, one);
    download(m, it.m, bytes);
    download(v, it.v, bytes);
  }
}

}  // namespace agpt::ops
