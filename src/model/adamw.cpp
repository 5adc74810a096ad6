#include "model/adamw.h"

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

AdamW::AdamW(ops::Backend& backend, const std::vector<Parameter>& params, const AdamWConfig& config)
    : backend_(&backend), config_(config) {
  if (!(config.lr >= 0) || !(config.beta1 >= 0 && config.beta1 < 1) || !(config.beta2 >= 0 && config.beta2 < 1) ||
      !(config.eps > 0) || !(config.weight_decay >= 0))
    fail("AdamW: invalid settings (need lr >= 0, 0 <= betas < 1, eps > 0, weight_decay >= 0)");
  for (const Parameter& p : params) {
    m_.push_back(backend.zeros(p.value.shape()));
    v_.push_back(backend.zeros(p.value.shape()));
  }
}

void AdamW::step(std::vector<Parameter>& params, double lr, float grad_scale) {
  if (params.size() != m_.size()) fail("AdamW: built for ", m_.size(), " parameters, stepped with ", params.size());
  ++steps_;
  ops::AdamWStep s = adamw_step_settings(config_, lr, steps_, grad_scale);
  s.weight_copy = true;  // whole parameters, written only here between steps
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].grad.defined()) fail("AdamW: parameter ", params[i].name, " has no gradient");
    s.weight_decay = params[i].decay ? config_.weight_decay : 0.0;
    backend_->adamw(params[i].value, params[i].grad, m_[i], v_[i], s);
  }
}

}  // namespace agpt::model
