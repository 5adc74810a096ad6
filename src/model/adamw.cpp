#include "model/adamw.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace agpt::model {

double global_grad_norm(ops::Backend& backend, const std::vector<Parameter>& params) {
  std::vector<ops::Tensor> grads;
  for (const Parameter& p : params) {
    if (!p.grad.defined()) fail("global_grad_norm: parameter ", p.name, " has no gradient");
    grads.push_back(p.grad);
  }
  return std::sqrt(backend.sum_squares(grads));
}

ops::AdamWStep adamw_step_settings(const AdamWConfig& config, double lr, int64_t step, float grad_scale) {
  ops::AdamWStep s;
  s.lr = lr < 0 ? config.lr : lr;
  s.beta1 = config.beta1;
  s.beta2 = config.beta2;
  s.eps = config.eps;
  s.step = step;
  s.grad_scale = grad_scale;
  return s;
}

float clip_coefficient(double norm, double max_norm) {
  if (max_norm <= 0) return 1.0f;
  // torch: clip_coef = max_norm / (total_norm + 1e-6) on a float32 tensor, clamped to 1.
  float coef = static_cast<float>(max_norm) / (static_cast<float>(norm) + 1e-6f);
  return std::min(coef, 1.0f);
}

AdamW::AdamW(ops::Backend& backend, const std::vector<Parameter>& params, const AdamWConfig& config,
             double host_fraction)
    : backend_(&backend), config_(config) {
  if (!(config.lr >= 0) || !(config.beta1 >= 0 && config.beta1 < 1) || !(config.beta2 >= 0 && config.beta2 < 1) ||
      !(config.eps > 0) || !(config.weight_decay >= 0))
    fail("AdamW: invalid settings (need lr >= 0, 0 <= betas < 1, eps > 0, weight_decay >= 0)");
  if (!(host_fraction >= 0 && host_fraction <= 1)) fail("AdamW: the offloaded share must be in [0, 1], not ", host_fraction);
  double total = 0;
  for (const Parameter& p : params) total += static_cast<double>(p.value.numel());
  // A parameter goes to the host while the elements before it are below the share.
  double before = 0;
  size_t host_total = 0;
  for (const Parameter& p : params) {
    const bool host = host_fraction > 0 && before < host_fraction * total;
    before += static_cast<double>(p.value.numel());
    numel_.push_back(p.value.numel());
    host_offset_.push_back(host ? host_total : kOnDevice);
    if (host) host_total += static_cast<size_t>(p.value.numel());
    m_.push_back(host ? ops::Tensor{} : backend.zeros(p.value.shape()));
    v_.push_back(host ? ops::Tensor{} : backend.zeros(p.value.shape()));
  }
  if (host_total > 0) {
    host_m_ = backend.allocate_host_f32(host_total);
    host_v_ = backend.allocate_host_f32(host_total);
  }
}

std::vector<float> AdamW::moment(size_t i, int which) {
  if (i >= numel_.size()) fail("AdamW: no parameter ", i);
  std::vector<float> out(static_cast<size_t>(numel_[i]));
  copy_moment(i, which, out);
  return out;
}

void AdamW::copy_moment(size_t i, int which, std::span<float> out) {
  if (i >= numel_.size()) fail("AdamW: no parameter ", i);
  if (out.size() != static_cast<size_t>(numel_[i]))
    fail("AdamW: room for ", out.size(), " moment values of parameter ", i, ", which has ", numel_[i]);
  if (!on_host(i)) {
    backend_->download((which == 0 ? m_ : v_)[i], out.data(), out.size_bytes());
    return;
  }
  backend_->synchronize();  // the last update's downloads
  const float* first = (which == 0 ? host_m_ : host_v_).get() + host_offset_[i];
  std::copy(first, first + numel_[i], out.begin());
}

void AdamW::set_moment(size_t i, int which, std::span<const float> values) {
  if (i >= numel_.size()) fail("AdamW: no parameter ", i);
  if (!on_host(i)) {
    backend_->upload((which == 0 ? m_ : v_)[i], values.data(), values.size_bytes());
    return;
  }
  if (values.size() != static_cast<size_t>(numel_[i]))
    fail("AdamW: ", values.size(), " moment values for parameter ", i, " of ", numel_[i]);
  backend_->synchronize();
  std::copy(values.begin(), values.end(), (which == 0 ? host_m_ : host_v_).get() + host_offset_[i]);
}

void AdamW::arrange_update_in_backward(std::vector<Parameter>& params, double lr) {
  if (arranged_) fail("AdamW: arrange_update_in_backward called twice without a step() between");
  if (params.size() != numel_.size()) fail("AdamW: built for ", numel_.size(), " parameters, arranged with ", params.size());
  // Gradients are made by the first backward: its update runs after it.
  for (const Parameter& p : params)
    if (!p.grad.defined()) return;
  std::vector<ops::Backend::AdamWItem> items;
  arranged_index_.clear();
  for (size_t i = 0; i < params.size(); ++i) {
    Parameter& p = params[i];
    if (on_host(i) || !p.one_product_gradient || p.value.numel() != numel_[i]) continue;
    items.push_back({&p.value, &p.grad, &m_[i], &v_[i], p.decay ? config_.weight_decay : 0.0});
    arranged_index_.push_back(i);
  }
  ops::AdamWStep s = adamw_step_settings(config_, lr, steps_ + 1, 1.0f);
  s.weight_copy = !host_m_;
  backend_->arrange_update_in_backward(items, s);
  arranged_ = true, arranged_lr_ = s.lr;
}

size_t AdamW::cancel_update_in_backward() {
  if (!arranged_) return 0;
  arranged_ = false;
  const std::vector<bool> done = backend_->take_updated_in_backward();
  return static_cast<size_t>(std::count(done.begin(), done.end(), true));
}

void AdamW::step(std::vector<Parameter>& params, double lr, float grad_scale) {
  if (params.size() != numel_.size()) fail("AdamW: built for ", numel_.size(), " parameters, stepped with ", params.size());
  ++steps_;
  ops::AdamWStep s = adamw_step_settings(config_, lr, steps_, grad_scale);
  // Whole parameters, written only here between steps: the backend may keep their bf16 copies
  // (not when offloading, which is for models that barely fit).
  s.weight_copy = !host_m_;
  std::vector<bool> updated(params.size(), false);  // parameters the backward updated already
  updated_in_backward_ = 0;
  if (arranged_) {
    arranged_ = false;
    const std::vector<bool> done = backend_->take_updated_in_backward();
    for (size_t k = 0; k < done.size() && k < arranged_index_.size(); ++k)
      if (done[k]) updated[arranged_index_[k]] = true, ++updated_in_backward_;
    if (grad_scale != 1.0f || s.lr != arranged_lr_)
      fail("AdamW: a step arranged in the backward (lr ", arranged_lr_, ", no scaling) was finished with lr ", s.lr,
           " and gradient scale ", grad_scale);
  }
  const std::vector<ops::Backend::AdamWItem> device = device_items(params, updated);
  std::vector<ops::Backend::HostMomentsItem> host;
  for (size_t i = 0; i < params.size(); ++i) {
    Parameter& p = params[i];
    if (on_host(i))
      host.push_back({&p.value, &p.grad, host_m_.get() + host_offset_[i], host_v_.get() + host_offset_[i],
                      p.decay ? config_.weight_decay : 0.0});
  }
  // The device's share first: the host moments' uploads wait for what is queued before them.
  if (!device.empty()) backend_->adamw_many(device, s);
  if (!host.empty()) backend_->adamw_host_moments(host, s);
}

void AdamW::prepare_step(std::vector<Parameter>& params) {
  if (arranged_) return;
  if (params.size() != numel_.size()) fail("AdamW: built for ", numel_.size(), " parameters, prepared with ", params.size());
  const std::vector<ops::Backend::AdamWItem> device = device_items(params, std::vector<bool>(params.size(), false));
  ops::AdamWStep s = adamw_step_settings(config_, -1.0, steps_ + 1, 1.0f);
  s.weight_copy = !host_m_;
  if (!device.empty()) backend_->prepare_adamw_many(device, s);
}

std::vector<ops::Backend::AdamWItem> AdamW::device_items(std::vector<Parameter>& params, const std::vector<bool>& skip) {
  std::vector<ops::Backend::AdamWItem> device;
  for (size_t i = 0; i < params.size(); ++i) {
    Parameter& p = params[i];
    if (!p.grad.defined()) fail("AdamW: parameter ", p.name, " has no gradient");
    if (p.value.numel() != numel_[i]) fail("AdamW: parameter ", p.name, " changed size since the optimizer was built");
    if (!on_host(i) && !skip[i]) device.push_back({&p.value, &p.grad, &m_[i], &v_[i], p.decay ? config_.weight_decay : 0.0});
  }
  return device;
}

}  // namespace agpt::model
