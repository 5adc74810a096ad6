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
             MomentPlacement placement)
    : backend_(&backend), config_(config), placement_(placement) {
  if (!(config.lr >= 0) || !(config.beta1 >= 0 && config.beta1 < 1) || !(config.beta2 >= 0 && config.beta2 < 1) ||
      !(config.eps > 0) || !(config.weight_decay >= 0))
    fail("AdamW: invalid settings (need lr >= 0, 0 <= betas < 1, eps > 0, weight_decay >= 0)");
  if (placement == MomentPlacement::kHost) {
    size_t total = 0;
    for (const Parameter& p : params) {
      offsets_.push_back(total);
      total += static_cast<size_t>(p.value.numel());
    }
    offsets_.push_back(total);
    host_m_ = backend.allocate_host_f32(total);
    host_v_ = backend.allocate_host_f32(total);
    return;
  }
  for (const Parameter& p : params) {
    m_.push_back(backend.zeros(p.value.shape()));
    v_.push_back(backend.zeros(p.value.shape()));
  }
}

std::vector<float> AdamW::moment(size_t i, int which) {
  if (placement_ == MomentPlacement::kDevice) return backend_->to_host_f32((which == 0 ? m_ : v_).at(i));
  if (i + 1 >= offsets_.size()) fail("AdamW: no parameter ", i);
  backend_->synchronize();  // the last update's downloads
  const float* base = (which == 0 ? host_m_ : host_v_).get();
  return std::vector<float>(base + offsets_[i], base + offsets_[i + 1]);
}

void AdamW::set_moment(size_t i, int which, std::span<const float> values) {
  if (placement_ == MomentPlacement::kDevice) {
    ops::Tensor& t = (which == 0 ? m_ : v_).at(i);
    backend_->upload(t, values.data(), values.size_bytes());
    return;
  }
  if (i + 1 >= offsets_.size()) fail("AdamW: no parameter ", i);
  if (values.size() != offsets_[i + 1] - offsets_[i])
    fail("AdamW: ", values.size(), " moment values for parameter ", i, " of ", offsets_[i + 1] - offsets_[i]);
  backend_->synchronize();
  std::copy(values.begin(), values.end(), (which == 0 ? host_m_ : host_v_).get() + offsets_[i]);
}

void AdamW::step(std::vector<Parameter>& params, double lr, float grad_scale) {
  const size_t built_for = placement_ == MomentPlacement::kHost ? offsets_.size() - 1 : m_.size();
  if (params.size() != built_for) fail("AdamW: built for ", built_for, " parameters, stepped with ", params.size());
  ++steps_;
  ops::AdamWStep s = adamw_step_settings(config_, lr, steps_, grad_scale);
  if (placement_ == MomentPlacement::kHost) {
    std::vector<ops::Backend::HostMomentsItem> items;
    for (size_t i = 0; i < params.size(); ++i) {
      if (!params[i].grad.defined()) fail("AdamW: parameter ", params[i].name, " has no gradient");
      if (params[i].value.numel() != static_cast<int64_t>(offsets_[i + 1] - offsets_[i]))
        fail("AdamW: parameter ", params[i].name, " changed size since the optimizer was built");
      items.push_back({&params[i].value, &params[i].grad, host_m_.get() + offsets_[i], host_v_.get() + offsets_[i],
                       params[i].decay ? config_.weight_decay : 0.0});
    }
    backend_->adamw_host_moments(items, s);
    return;
  }
  s.weight_copy = true;  // whole parameters, written only here between steps
  std::vector<ops::Backend::AdamWItem> items;
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].grad.defined()) fail("AdamW: parameter ", params[i].name, " has no gradient");
    items.push_back({&params[i].value, &params[i].grad, &m_[i], &v_[i], params[i].decay ? config_.weight_decay : 0.0});
  }
  backend_->adamw_many(items, s);
}

}  // namespace agpt::model
