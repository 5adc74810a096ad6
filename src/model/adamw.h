// AdamW over a model's parameters, with torch.optim.AdamW's arithmetic, and global gradient-norm
// clipping as torch.nn.utils.clip_grad_norm_. The moments live on the model's backend.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/llama.h"
#include "ops/backend.h"

namespace agpt::model {

struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;  // applied to parameters with decay == true (2 or more dimensions)
};

// The settings of update number `step` (weight decay left 0: it depends on the parameter).
ops::AdamWStep adamw_step_settings(const AdamWConfig& config, double lr, int64_t step, float grad_scale);

// sqrt(Σ grad²) over every parameter's gradient (accumulated in double).
double global_grad_norm(ops::Backend& backend, const std::vector<Parameter>& params);
// torch's clip coefficient: min(1, max_norm / (norm + 1e-6)), computed in float. max_norm <= 0: 1.
float clip_coefficient(double norm, double max_norm);

// Where the moments live: on the backend's device, or in host memory (optimizer CPU offload, as
// DeepSpeed's ZeRO-Offload and Megatron's --optimizer-cpu-offload: 8 bytes a parameter less on the
// GPU, streamed through it at every update; the arithmetic, and so every result, is the same).
enum class MomentPlacement { kDevice, kHost };

class AdamW {
 public:
  AdamW(ops::Backend& backend, const std::vector<Parameter>& params, const AdamWConfig& config,
        MomentPlacement placement = MomentPlacement::kDevice);

  // One update of every parameter from its grad, the gradient first multiplied by grad_scale
  // (pass clip_coefficient(...) for clipping). lr < 0 uses config().lr.
  void step(std::vector<Parameter>& params, double lr = -1.0, float grad_scale = 1.0f);

  const AdamWConfig& config() const { return config_; }
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }
  MomentPlacement placement() const { return placement_; }
  // Moment `which` (0: m, 1: v) of parameter i, in either placement (for checkpoints).
  std::vector<float> moment(size_t i, int which);
  void set_moment(size_t i, int which, std::span<const float> values);
  // The device moments in the order of the parameters (empty with MomentPlacement::kHost).
  std::vector<ops::Tensor>& m() { return m_; }
  std::vector<ops::Tensor>& v() { return v_; }

 private:
  ops::Backend* backend_;
  AdamWConfig config_;
  MomentPlacement placement_;
  int64_t steps_ = 0;
  std::vector<ops::Tensor> m_, v_;
  // kHost: one allocation each for m and v, parameter i at offsets_[i].
  std::shared_ptr<float[]> host_m_, host_v_;
  std::vector<size_t> offsets_;
};

}  // namespace agpt::model
