#include "model/verify.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/file.h"
#include "model/adamw.h"

namespace agpt::model {

bool VerifyReport::ok() const {
  for (const TensorCheck& t : tensors)
    if (!t.ok) return false;
  for (const ScalarCheck& s : scalars)
    if (!s.ok) return false;
  return true;
}

double VerifyReport::worst_rel_l2() const {
  double w = 0;
  for (const TensorCheck& t : tensors) w = std::max(w, t.rel_l2);
  return w;
}

TensorCheck compare_tensor(const std::string& name, std::span<const float> got, std::span<const float> ref,
                           const Tolerance& tol) {
  TensorCheck c;
  c.name = name;
  c.numel = static_cast<int64_t>(ref.size());
  if (got.size() != ref.size()) {
    c.rel_l2 = c.max_abs_err = INFINITY;
    return c;
  }
  double diff2 = 0, ref2 = 0;
  bool finite = true;
  for (size_t i = 0; i < ref.size(); ++i) {
    double d = static_cast<double>(got[i]) - ref[i];
    finite = finite && std::isfinite(got[i]);
    diff2 += d * d;
    ref2 += static_cast<double>(ref[i]) * ref[i];
    c.max_abs_err = std::max(c.max_abs_err, std::fabs(d));
    c.ref_max_abs = std::max(c.ref_max_abs, std::fabs(static_cast<double>(ref[i])));
  }
  c.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  c.ok = finite && c.rel_l2 <= tol.rel_l2 && c.max_abs_err <= tol.max_abs * c.ref_max_abs + 1e-30;
  return c;
}

ScalarCheck compare_scalar(const std::string& name, double value, double reference, double rel_tol) {
  ScalarCheck s{name, value, reference, 0, false};
  s.rel_err = reference != 0 ? std::fabs(value - reference) / std::fabs(reference) : std::fabs(value);
  s.ok = std::isfinite(value) && s.rel_err <= rel_tol;
  return s;
}

namespace {

double json_number(const nlohmann::json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) fail(where, ": \"", key, "\" must be a number");
  return it->get<double>();
}

std::vector<double> json_numbers(const nlohmann::json& j, const char* key, const std::string& where) {
  std::vector<double> out;
  auto it = j.find(key);
  if (it == j.end()) return out;
  if (!it->is_array()) fail(where, ": \"", key, "\" must be a list of numbers");
  for (const auto& v : *it) {
    if (!v.is_number()) fail(where, ": \"", key, "\" must be a list of numbers");
    out.push_back(v.get<double>());
  }
  return out;
}

}  // namespace

VerifyReport verify_reference(Llama& model, const std::string& reference_path, const VerifyOptions& options,
                              const std::string& reference_json) {
  VerifyReport report;
  SafetensorsFile ref(reference_path);
  ops::Backend& be = model.backend();

  // Input ids.
  const StTensorInfo& ids_info = ref.at("input_ids");
  if (ids_info.shape.size() != 2 || ids_info.shape[0] <= 0 || ids_info.shape[1] <= 0)
    fail(reference_path, ": input_ids must be a non-empty B×T matrix, got ", ids_info.shape_string());
  const int64_t B = ids_info.shape[0], T = ids_info.shape[1];
  report.B = B;
  report.T = T;
  std::vector<int32_t> ids;
  for (int64_t id : ref.read_i64("input_ids")) {
    if (id < 0 || id >= model.config().vocab_size)
      fail(reference_path, ": input id ", id, " is outside the model's vocabulary of ", model.config().vocab_size);
    ids.push_back(static_cast<int32_t>(id));
  }
  std::vector<int32_t> targets = shift_targets(ids, B, T);

  // reference.json (optional).
  std::string json_path = reference_json;
  if (json_path.empty()) json_path = std::filesystem::path(reference_path).replace_extension(".json").string();
  nlohmann::json info;
  bool have_json = file_exists(json_path);
  if (have_json) {
    try {
      info = nlohmann::json::parse(read_file(json_path));
    } catch (const nlohmann::json::exception& e) {
      fail(json_path, ": not valid JSON (", e.what(), ")");
    }
    if (!info.is_object()) fail(json_path, ": must be a JSON object");
  } else {
    report.notes.push_back("no " + json_path + ": loss and training steps not checked");
  }

  // Forward: logits and loss.
  float loss = model.forward(ids, targets, B, T);
  if (const StTensorInfo* li = ref.find("logits")) {
    std::vector<float> want = ref.read_f32("logits");
    if (li->numel() != B * T * model.config().vocab_size)
      fail(reference_path, ": logits ", li->shape_string(), " do not match ", B, "x", T, "x", model.config().vocab_size);
    report.tensors.push_back(compare_tensor("logits", be.to_host_f32(model.logits()), want, options.logits));
  } else {
    report.notes.push_back("reference has no logits");
  }
  if (have_json && info.contains("loss"))
    report.scalars.push_back(compare_scalar("loss", loss, json_number(info, "loss", json_path), options.scalar_rel));

  // Backward: every gradient.
  model.zero_grad();
  model.backward();
  for (Parameter& p : model.parameters()) {
    std::string name = "grad." + p.name;
    if (!ref.find(name)) {
      report.notes.push_back("reference has no " + name);
      continue;
    }
    report.tensors.push_back(compare_tensor(name, be.to_host_f32(p.grad), ref.read_f32(name), options.grads));
  }

  // AdamW steps.
  if (!have_json || !options.train_steps) return report;
  if (!info.contains("optimizer")) {
    report.notes.push_back(json_path + " has no optimizer settings: training steps not checked");
    return report;
  }
  const nlohmann::json& opt = info["optimizer"];
  std::string where = json_path + ": optimizer";
  if (!opt.is_object()) fail(where, " must be an object");
  if (opt.contains("type") && opt["type"] != "AdamW") fail(where, ": only AdamW references are supported");
  AdamWConfig cfg;
  cfg.lr = json_number(opt, "lr", where);
  auto betas = json_numbers(opt, "betas", where);
  if (betas.size() != 2) fail(where, ": \"betas\" must hold two numbers");
  cfg.beta1 = betas[0];
  cfg.beta2 = betas[1];
  cfg.eps = json_number(opt, "eps", where);
  cfg.weight_decay = json_number(opt, "weight_decay", where);
  double clip = opt.contains("grad_clip_global_norm") ? json_number(opt, "grad_clip_global_norm", where) : 0.0;
  double steps_d = json_number(opt, "steps", where);
  if (steps_d < 0 || steps_d > 10000 || steps_d != std::floor(steps_d)) fail(where, ": \"steps\" must be 0..10000");
  int64_t steps = static_cast<int64_t>(steps_d);
  std::vector<double> losses = json_numbers(info, "train_losses", json_path);
  std::vector<double> norms = json_numbers(info, "grad_norms_before_clip", json_path);

  AdamW adamw(be, model.parameters(), cfg);
  for (int64_t s = 0; s < steps; ++s) {
    float l = model.forward(ids, targets, B, T, /*for_backward=*/true);
    model.zero_grad();
    model.backward();
    double norm = global_grad_norm(be, model.parameters());
    if (s < static_cast<int64_t>(losses.size()))
      report.scalars.push_back(compare_scalar(cat("train_loss[", s, "]"), l, losses[s], options.scalar_rel));
    if (s < static_cast<int64_t>(norms.size()))
      report.scalars.push_back(compare_scalar(cat("grad_norm[", s, "]"), norm, norms[s], options.scalar_rel));
    adamw.step(model.parameters(), cfg.lr, clip_coefficient(norm, clip));
  }
  for (Parameter& p : model.parameters()) {
    std::string name = "final." + p.name;
    if (!ref.find(name)) {
      report.notes.push_back("reference has no " + name);
      continue;
    }
    report.tensors.push_back(
        compare_tensor(name, be.to_host_f32(p.value), ref.read_f32(name), options.final_params));
  }
  return report;
}

}  // namespace agpt::model
