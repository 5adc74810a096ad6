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

class AdamW {
 public:
  // host_fraction: the share of the parameters (by element count, in order: the embedding and the
  // first layers first) whose moments live in host memory instead of on the backend's device
  // (optimizer CPU offload, as DeepSpeed's ZeRO-Offload and Megatron's --optimizer-cpu-offload with
  // --optimizer-offload-fraction): 8 bytes a parameter less on the GPU, streamed through it at
  // every update. The arithmetic, and so every result, is the same. 0: all on the device.
  AdamW(ops::Backend& backend, const std::vector<Parameter>& params, const AdamWConfig& config,
        double host_fraction = 0.0);

  // One update of every parameter from its grad, the gradient first multiplied by grad_scale
  // (pass clip_coefficient(...) for clipping). lr < 0 uses config().lr.
  void step(std::vector<Parameter>& params, double lr = -1.0, float grad_scale = 1.0f);
  // The host's share of the next step() (ops::Backend::prepare_adamw_many), done now while the
  // device still computes the gradients: call it before waiting for the gradient norm, so that the
  // device does not wait for that work after the norm. Nothing when an update in the backward is
  // arranged (its step() learns only then which parameters are left). step() is the same without it.
  void prepare_step(std::vector<Parameter>& params);
  // The optimizer step inside the backward (torchtune's optimizer_in_bwd): called before the
  // backward of a step's only micro-batch, it lets the backend update parameters in the products
  // that compute their gradients (ops::Backend::arrange_update_in_backward); the step() after the
  // backward (with the same lr, grad_scale 1: nothing can be clipped) updates the others. Each
  // parameter gets the same update either way; only where its memory traffic runs differs.
  void arrange_update_in_backward(std::vector<Parameter>& params, double lr = -1.0);
  // How many parameters the last step found updated in the backward already.
  size_t updated_in_backward() const { return updated_in_backward_; }
  // Whether an update in the backward is arranged (and not yet finished by step()).
  bool arranged() const { return arranged_; }
  // Ends the arrangement without a step (a skipped step): how many parameters the backward has
  // updated already (0: skipping loses nothing; otherwise they cannot be restored).
  size_t cancel_update_in_backward();

  const AdamWConfig& config() const { return config_; }
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }
  bool on_host(size_t i) const { return host_offset_.at(i) != kOnDevice; }
  int64_t numel(size_t i) const { return numel_.at(i); }
  // Moment `which` (0: m, 1: v) of parameter i, wherever it lives (for checkpoints).
  std::vector<float> moment(size_t i, int which);
  // The same into `out` (numel floats; page-locked host memory makes the download fast).
  void copy_moment(size_t i, int which, std::span<float> out);
  void set_moment(size_t i, int which, std::span<const float> values);
  // The device moments in the order of the parameters (undefined tensors for those on the host).
  std::vector<ops::Tensor>& m() { return m_; }
  std::vector<ops::Tensor>& v() { return v_; }

 private:
  static constexpr size_t kOnDevice = SIZE_MAX;
  // The device update's items: every parameter whose moments are on the device and not in `skip`.
  std::vector<ops::Backend::AdamWItem> device_items(std::vector<Parameter>& params, const std::vector<bool>& skip);
  ops::Backend* backend_;
  AdamWConfig config_;
  int64_t steps_ = 0;
  bool arranged_ = false;  // arrange_update_in_backward was called; step() takes what was updated
  std::vector<size_t> arranged_index_;  // the parameters arranged, in the order of the backend's items
  double arranged_lr_ = 0;
  size_t updated_in_backward_ = 0;
  std::vector<int64_t> numel_;
  std::vector<ops::Tensor> m_, v_;
  // Moments in host memory: one allocation each for m and v, parameter i at host_offset_[i].
  std::shared_ptr<float[]> host_m_, host_v_;
  std::vector<size_t> host_offset_;
};

}  // namespace agpt::model
