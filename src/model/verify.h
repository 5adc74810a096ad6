// Checking a model against a reference computed by PyTorch/transformers (the layout of
// ../shared/testdata/llama-ref, written for any checkpoint by tools/make_llama_reference.py):
//   reference.safetensors: input_ids (int, B×T), logits (B×T×V), grad.<param>, final.<param>
//   reference.json:        loss, train_losses, grad_norms_before_clip, optimizer settings
// The loss is HF's labels=input_ids (position t predicts t+1, mean over B·(T−1) positions).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "model/llama.h"

namespace agpt::model {

// A tensor passes when ‖got−ref‖/‖ref‖ <= rel_l2 and max|got−ref| <= max_abs · max|ref|.
struct Tolerance {
  double rel_l2 = 1e-5;
  double max_abs = 1e-5;
};

struct TensorCheck {
  std::string name;
  int64_t numel = 0;
  double rel_l2 = 0;       // ‖got−ref‖/‖ref‖ (‖got−ref‖ when ref is all zeros)
  double max_abs_err = 0;  // max |got−ref|
  double ref_max_abs = 0;  // max |ref|
  bool ok = false;
};

struct ScalarCheck {
  std::string name;
  double value = 0;
  double reference = 0;
  double rel_err = 0;  // |value−reference| / |reference|
  bool ok = false;
};

// Default tolerances (docs/model.md has the measured errors). Parameters after AdamW steps get a
// looser bound: Adam's update m/(sqrt(v)+eps) turns fp32 noise in gradients that are nearly zero
// (|g| ~ 1e-9 when max|g| ~ 1e-2) into update differences of up to a few percent of lr.
struct VerifyOptions {
  Tolerance logits{1e-5, 1e-5};
  Tolerance grads{1e-5, 1e-5};
  Tolerance final_params{5e-5, 1e-3};
  double scalar_rel = 1e-5;  // loss, training losses, gradient norms
  bool train_steps = true;   // run the AdamW steps when reference.json describes them
};

struct VerifyReport {
  int64_t B = 0, T = 0;
  std::vector<TensorCheck> tensors;
  std::vector<ScalarCheck> scalars;
  std::vector<std::string> notes;  // what was skipped and why
  bool ok() const;
  double worst_rel_l2() const;
};

TensorCheck compare_tensor(const std::string& name, std::span<const float> got, std::span<const float> ref,
                           const Tolerance& tol);
ScalarCheck compare_scalar(const std::string& name, double value, double reference, double rel_tol);

// Runs the reference's input_ids through `model` (freshly loaded: the AdamW steps change its
// weights) and compares everything the reference holds. reference_json "" means the .json beside
// the .safetensors (skipped with a note when absent).
VerifyReport verify_reference(Llama& model, const std::string& reference_path, const VerifyOptions& options,
                              const std::string& reference_json = "");

}  // namespace agpt::model
