#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>

#include "base/checksum.h"
#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "model/safetensors.h"

namespace fs = std::filesystem;

namespace agpt::train {
namespace {

constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kFormat = "agpt-trainer-state";
constexpr int kVersion = 1;

std::string hex64(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

uint64_t parse_hex64(const std::string& s, const std::string& what) {
  if (s.empty() || s.size() > 16 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
    fail(what, ": not a 64-bit hex value: '", s, "'");
  return std::stoull(s, nullptr, 16);
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(dir, ": cannot open directory to flush it (", std::strerror(errno), ")");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail(dir, ": could not flush directory (", std::strerror(errno), ")");
}

// Checksum of the state object with its own "state_checksum" removed.
uint64_t state_self_checksum(nlohmann::ordered_json j) {
  j.erase("state_checksum");
  return checksum_bytes(j.dump());
}

// The moment shard files a checkpoint lists (optimizer-00001-of-00004.safetensors, ...), in rank
// order; "" in *problem unless the set is incomplete or mixed.
std::vector<std::string> listed_moment_shards(const nlohmann::ordered_json& files, std::string* problem) {
  std::vector<std::string> names;
  int ranks = 0;
  for (const auto& [fname, info] : files.items()) {
    int rank = 0, of = 0;
    char tail[32] = {};
    if (std::sscanf(fname.c_str(), "optimizer-%5d-of-%5d.%20s", &rank, &of, tail) != 3 ||
        std::string(tail) != "safetensors" || rank < 1 || rank > of || fname != moment_shard_file(rank - 1, of))
      continue;
    if (ranks != 0 && of != ranks) {
      *problem = cat("the moment shards disagree on their number (", ranks, " and ", of, ")");
      return {};
    }
    ranks = of;
    names.push_back(fname);
  }
  std::sort(names.begin(), names.end());
  if (static_cast<int>(names.size()) != ranks) {
    *problem = cat("the checkpoint lists ", names.size(), " of its ", ranks, " optimizer moment shards");
    return {};
  }
  return names;
}

bool parse_step_name(const std::string& name, int64_t* step) {
  if (name.size() != 12 || name.rfind("step_", 0) != 0) return false;
  for (size_t i = 5; i < name.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  *step = std::stoll(name.substr(5));
  return true;
}

}  // namespace

uint64_t checksum_bytes(std::string_view data) { return fnv1a64_words(data); }

uint64_t checksum_file(const std::string& path) {
  MappedFile f(path);
  return checksum_bytes(f.view());
}

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%07lld", static_cast<long long>(step));
  return buf;
}

std::vector<int64_t> list_checkpoints(const std::string& root) {
  std::vector<int64_t> steps;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return steps;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    int64_t s;
    if (entry.is_directory(ec) && parse_step_name(entry.path().filename().string(), &s)) steps.push_back(s);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

MomentView adamw_moments(model::AdamW& optimizer, std::vector<float>& buffer) {
  return [&optimizer, &buffer](size_t i, int which) {
    buffer.resize(static_cast<size_t>(optimizer.numel(i)));
    optimizer.copy_moment(i, which, buffer);
    return std::span<const float>(buffer);
  };
}

std::string save_checkpoint(const std::string& root, const model::Llama& model, model::AdamW& optimizer,
                            const TrainerState& state, const std::string& tokenizer_path, int64_t keep_last) {
  std::vector<float> buffer;
  return save_checkpoint(root, model, adamw_moments(optimizer, buffer), optimizer.steps(), state, tokenizer_path,
                         keep_last);
}

namespace {

// Writes some of a checkpoint's files into a directory (the weights and config.json; the
// optimizer's) and returns their digests.
using FilesWriter = std::function<model::WrittenFiles(const std::string& dir)>;

// optimizer.safetensors: every moment whole, under its parameter's name.
FilesWriter whole_moments(const std::vector<model::TensorSpec>& params, const MomentView& moments,
                              int64_t optimizer_steps) {
  return [&params, &moments, optimizer_steps](const std::string& dir) {
    model::SafetensorsWriter w;
    for (const model::TensorSpec& p : params) {
      w.declare_f32("exp_avg." + p.name, p.shape);
      w.declare_f32("exp_avg_sq." + p.name, p.shape);
    }
    w.set_metadata("format", "pt");
    w.set_metadata("optimizer", "AdamW");
    w.set_metadata("step", std::to_string(optimizer_steps));
    model::WrittenFiles written;
    written[kOptimizerFile] = w.write((fs::path(dir) / kOptimizerFile).string(),
                                      [&](size_t k) { return moments(k / 2, static_cast<int>(k % 2)); });
    return written;
  };
}

// The checkpoint writer behind every save_checkpoint. begun: the directory begin_checkpoint made
// (other ranks' files are in it already); empty: made here.
std::string write_checkpoint(const std::string& root, const FilesWriter& write_weights,
                             const FilesWriter& write_optimizer, const TrainerState& state,
                             const std::string& tokenizer_path, int64_t keep_last, const std::string& begun = "") {
  const std::string name = checkpoint_name(state.step);
  const fs::path final_dir = fs::path(root) / name;
  const fs::path tmp = begun.empty() ? fs::path(begin_checkpoint(root, state.step)) : fs::path(begun);
  std::error_code ec;

  // Phase times for `--log debug` (a 7B checkpoint takes minutes: where do they go?).
  auto clock_now = [] { return std::chrono::steady_clock::now(); };
  auto since = [](auto t0) { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const auto t_start = clock_now();
  // Sizes and checksums of the files as they were written (the large ones); others are read back.
  model::WrittenFiles written = write_weights(tmp.string());
  const double s_weights = since(t_start);
  const auto t_moments = clock_now();
  written.merge(write_optimizer(tmp.string()));
  if (!tokenizer_path.empty()) write_file_atomic((tmp / "tokenizer.json").string(), read_file(tokenizer_path));

  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["step"] = state.step;
  j["optimizer_steps"] = state.optimizer_steps;
  j["consumed_samples"] = state.consumed;
  nlohmann::ordered_json per_source = nlohmann::ordered_json::object();
  for (const auto& [prefix, n] : state.stream.per_source) per_source[prefix] = n;
  j["data_stream"] = {{"split", "train"},
                      {"consumed", state.stream.consumed},
                      {"per_source", per_source},
                      {"order", state.data_order},
                      {"plan", hex64(state.data_plan)}};
  j["rng"] = {{"kind", "splitmix64"}, {"seed", state.rng_seed}, {"state", hex64(state.rng_state)}};
  j["config_hash"] = hex64(state.config_hash);
  j["bad_streak"] = state.bad_streak;
  j["skipped_steps"] = state.skipped;
  j["loss_window"] = state.loss_window;
  j["tokens"] = state.tokens;
  j["ranks"] = state.ranks;
  j["elapsed_s"] = state.elapsed;
  j["config"] = state.config;
  const double s_moments = since(t_moments);
  const auto t_sums = clock_now();
  nlohmann::ordered_json files = nlohmann::ordered_json::object();
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(tmp)) {
    std::string fname = entry.path().filename().string();
    if (entry.is_regular_file() && fname != kStateFile) names.push_back(fname);
  }
  std::sort(names.begin(), names.end());
  for (const std::string& fname : names) {
    std::string p = (tmp / fname).string();
    auto known = written.find(fname);
    const FileDigest d = known != written.end() ? known->second : FileDigest{file_size(p), checksum_file(p)};
    files[fname] = {{"bytes", d.bytes}, {"fnv1a64", hex64(d.fnv1a64)}};
  }
  j["files"] = files;
  const double s_sums = since(t_sums);
  j["state_checksum"] = hex64(state_self_checksum(j));
  write_file_atomic((tmp / kStateFile).string(), j.dump(2) + "\n");
  fsync_dir(tmp.string());

  // Replace an older checkpoint of the same step (a run resumed from before it).
  if (fs::exists(final_dir, ec)) {
    fs::path old = fs::path(root) / (".old." + name);
    fs::remove_all(old, ec);
    fs::rename(final_dir, old, ec);
    if (ec) fail(final_dir.string(), ": cannot move the old checkpoint aside (", ec.message(), ")");
    fs::rename(tmp, final_dir, ec);
    if (ec) fail(final_dir.string(), ": cannot rename ", tmp.string(), " into place (", ec.message(), ")");
    fs::remove_all(old, ec);
  } else {
    fs::rename(tmp, final_dir, ec);
    if (ec) fail(final_dir.string(), ": cannot rename ", tmp.string(), " into place (", ec.message(), ")");
  }
  fsync_dir(root);
  write_file_atomic((fs::path(root) / "latest").string(), name + "\n");
  fsync_dir(root);
  log_debug("checkpoint ", name, ": weights ", s_weights, " s, optimizer moments ", s_moments, " s, checksums ",
            s_sums, " s, all ", since(t_start), " s");

  // Keep the newest keep_last (never the one just written).
  std::vector<int64_t> steps = list_checkpoints(root);
  int64_t excess = static_cast<int64_t>(steps.size()) - keep_last;
  for (int64_t i = 0; i < excess; ++i) {
    if (steps[i] == state.step) continue;
    fs::remove_all(fs::path(root) / checkpoint_name(steps[i]), ec);
    if (ec) log_warn("could not delete old checkpoint ", checkpoint_name(steps[i]), ": ", ec.message());
  }
  return final_dir.string();
}

}  // namespace

std::string begin_checkpoint(const std::string& root, int64_t step) {
  const fs::path tmp = fs::path(root) / (".tmp." + checkpoint_name(step));
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) fail(root, ": cannot create the checkpoint directory (", ec.message(), ")");
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) fail(tmp.string(), ": cannot create (", ec.message(), ")");
  return tmp.string();
}

std::string moment_shard_file(int rank, int ranks) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "optimizer-%05d-of-%05d.safetensors", rank + 1, ranks);
  return buf;
}

FileDigest write_moment_shard(const std::string& dir, const std::vector<model::TensorSpec>& params, int rank,
                              int ranks, int64_t optimizer_steps, const std::vector<MomentPart>& parts) {
  model::SafetensorsWriter w;
  std::vector<char> seen(params.size(), 0);
  std::vector<std::span<const float>> tensors;  // in the order declared
  for (const MomentPart& part : parts) {
    if (part.param >= params.size() || part.m.size() != part.v.size() || seen[part.param]++ ||
        (!part.master.empty() && part.master.size() != part.m.size()))
      fail("moment shard ", rank + 1, " of ", ranks, ": a part names parameter ", part.param, " of ", params.size(),
           ", one named before, or its moments (or master values) differ in length");
    const std::string& name = params[part.param].name;
    const auto count = static_cast<int64_t>(part.m.size());
    w.declare_f32("exp_avg." + name, {count});
    w.declare_f32("exp_avg_sq." + name, {count});
    tensors.push_back(part.m);
    tensors.push_back(part.v);
    if (!part.master.empty()) {
      w.declare_f32("master." + name, {count});
      tensors.push_back(part.master);
    }
    w.set_metadata("offset." + name, std::to_string(part.offset));
    if (part.slice.split())
      w.set_metadata("slice." + name, cat(part.slice.dim, ":", part.slice.begin, ":", part.slice.count));
  }
  w.set_metadata("format", "pt");
  w.set_metadata("optimizer", "AdamW");
  w.set_metadata("step", std::to_string(optimizer_steps));
  w.set_metadata("shard", std::to_string(rank + 1) + " of " + std::to_string(ranks));
  return w.write((fs::path(dir) / moment_shard_file(rank, ranks)).string(), [&](size_t k) { return tensors.at(k); });
}

std::string save_checkpoint(const std::string& root, const model::Llama& model, const MomentView& moments,
                            int64_t optimizer_steps, const TrainerState& state, const std::string& tokenizer_path,
                            int64_t keep_last, const WeightView& weights) {
  const std::vector<model::TensorSpec> params = model.tensor_specs();
  FilesWriter write_weights = [&](const std::string& dir) {
    if (!weights) return model.save(dir, model::StDType::F32);
    return model::save_model(dir, model.config(), params, weights, model::StDType::F32);
  };
  return write_checkpoint(root, write_weights, whole_moments(params, moments, optimizer_steps), state, tokenizer_path,
                          keep_last);
}

std::string commit_checkpoint(const std::string& root, const std::string& begun, const model::WrittenFiles& written,
                              const TrainerState& state, const std::string& tokenizer_path, int64_t keep_last) {
  // Written by the ranks already: each must be here (a rank on a host that does not share the
  // directory wrote it elsewhere).
  auto check = [&](const std::string& dir) {
    for (const auto& [name, digest] : written)
      if (!file_exists((fs::path(dir) / name).string()))
        fail(dir, ": ", name, " is missing although its rank wrote it: train.out_dir must be one directory that "
             "every rank sees (a shared filesystem)");
    return written;
  };
  return write_checkpoint(root, check, [](const std::string&) { return model::WrittenFiles{}; }, state,
                          tokenizer_path, keep_last, begun);
}

std::string save_checkpoint(const std::string& root, const CheckpointSnapshot& snapshot,
                            const std::string& tokenizer_path, int64_t keep_last) {
  FilesWriter write_weights = [&](const std::string& dir) {
    return model::save_model(dir, snapshot.config, snapshot.params, snapshot.weights, model::StDType::F32);
  };
  return write_checkpoint(root, write_weights, whole_moments(snapshot.params, snapshot.moments, snapshot.optimizer_steps),
                          snapshot.state, tokenizer_path, keep_last);
}

std::string verify_checkpoint(const std::string& dir) {
  const std::string state_path = (fs::path(dir) / kStateFile).string();
  if (!file_exists(state_path)) return "missing " + std::string(kStateFile);
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(read_file(state_path));
  } catch (const std::exception& e) {
    return std::string(kStateFile) + " is not valid JSON (truncated?): " + e.what();
  }
  try {
    if (!j.is_object() || j.value("format", "") != kFormat) return std::string(kStateFile) + " is not an agpt trainer state";
    if (j.value("version", 0) != kVersion)
      return cat(kStateFile, " has version ", j.value("version", 0), ", this agpt reads version ", kVersion);
    if (!j.contains("state_checksum") || !j["state_checksum"].is_string()) return "trainer_state.json has no checksum";
    if (parse_hex64(j["state_checksum"].get<std::string>(), kStateFile) != state_self_checksum(j))
      return "trainer_state.json does not match its checksum (edited or damaged)";
    if (!j.contains("files") || !j["files"].is_object()) return "trainer_state.json lists no files";
    for (const auto& [fname, info] : j["files"].items()) {
      if (fname.find('/') != std::string::npos || fname == ".." || fname == ".")
        return "trainer_state.json names a file outside the checkpoint: " + fname;
      std::string p = (fs::path(dir) / fname).string();
      if (!file_exists(p)) return "missing " + fname;
      uint64_t want_bytes = info.at("bytes").get<uint64_t>();
      if (file_size(p) != want_bytes) return cat(fname, " has ", file_size(p), " bytes, the checkpoint recorded ", want_bytes, " (truncated?)");
      if (checksum_file(p) != parse_hex64(info.at("fnv1a64").get<std::string>(), fname))
        return fname + " does not match its checksum (damaged)";
    }
    for (const char* required : {"model.safetensors", "config.json"})
      if (!j["files"].contains(required) && !(std::string(required) == "model.safetensors" && j["files"].contains("model.safetensors.index.json")))
        return std::string("the checkpoint lists no ") + required;
    if (!j["files"].contains(kOptimizerFile)) {
      std::string problem;
      if (listed_moment_shards(j["files"], &problem).empty())
        return problem.empty() ? cat("the checkpoint lists no ", kOptimizerFile, " and no moment shards") : problem;
    }
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("trainer_state.json is malformed: ") + e.what();
  }
  return "";
}

std::string find_resume_checkpoint(const std::string& root) {
  std::vector<int64_t> steps = list_checkpoints(root);
  std::string latest_name;
  std::string latest_path = (fs::path(root) / "latest").string();
  if (file_exists(latest_path)) {
    latest_name = read_file(latest_path);
    while (!latest_name.empty() && (latest_name.back() == '\n' || latest_name.back() == '\r' || latest_name.back() == ' '))
      latest_name.pop_back();
    int64_t s;
    if (!parse_step_name(latest_name, &s)) {
      log_warn(latest_path, " names '", latest_name, "', not a checkpoint; looking for the newest valid one");
      latest_name.clear();
    }
  }
  // Candidates: the latest pointer first, then every step_* directory from newest to oldest.
  std::vector<std::string> order;
  if (!latest_name.empty()) order.push_back(latest_name);
  for (auto it = steps.rbegin(); it != steps.rend(); ++it)
    if (checkpoint_name(*it) != latest_name) order.push_back(checkpoint_name(*it));
  for (const std::string& name : order) {
    std::string dir = (fs::path(root) / name).string();
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      log_warn("checkpoint ", dir, " (named by ", latest_path, ") does not exist; trying older checkpoints");
      continue;
    }
    std::string problem = verify_checkpoint(dir);
    if (problem.empty()) return dir;
    log_warn("checkpoint ", dir, " is damaged: ", problem, "; trying the previous one");
  }
  return "";
}

TrainerState load_checkpoint(const std::string& dir, model::Llama& model, model::AdamW& optimizer) {
  TrainerState s = load_checkpoint(dir, model, [&](size_t i, int which, std::span<const float> values) {
    optimizer.set_moment(i, which, values);
  });
  optimizer.set_steps(s.optimizer_steps);
  return s;
}

namespace {

// Puts each parameter's moments back together from the shards' parts and hands them to `moments`.
void load_moment_shards(const std::string& dir, const std::vector<std::string>& names, model::Llama& model,
                        const MomentSink& moments) {
  std::vector<std::unique_ptr<model::SafetensorsFile>> files;
  for (const std::string& name : names)
    files.push_back(std::make_unique<model::SafetensorsFile>((fs::path(dir) / name).string()));
  struct Piece {
    const model::SafetensorsFile* file;
    const model::StTensorInfo *m, *v, *master;  // master: nullptr when the part has none
    int64_t offset;
    model::Shard slice;  // a tensor-parallel slice (not split: offsets in the whole tensor)
  };
  std::map<std::string, std::vector<Piece>> pieces;  // by parameter name
  size_t tensors = 0;
  for (const auto& file : files) {
    const model::SafetensorsFile& f = *file;
    tensors += f.tensors().size();
    for (const model::StTensorInfo& t : f.tensors()) {
      if (t.name.rfind("exp_avg.", 0) != 0) continue;
      const std::string param = t.name.substr(8);
      const model::StTensorInfo& v = f.at("exp_avg_sq." + param);
      const model::StTensorInfo* master = f.find("master." + param);
      auto at = f.metadata().find("offset." + param);
      if (at == f.metadata().end()) fail(f.path(), ": no offset for the part of '", param, "'");
      int64_t offset = -1;
      try {
        offset = std::stoll(at->second);
      } catch (const std::exception&) {
      }
      if (t.dtype != model::StDType::F32 || v.dtype != model::StDType::F32 || t.shape.size() != 1 ||
          v.shape != t.shape || offset < 0 || (master && (master->dtype != model::StDType::F32 || master->shape != t.shape)))
        fail(f.path(), ": the part of '", param, "' is not two (or three) 1-D fp32 tensors of one length at an offset "
             "(offset '", at->second, "')");
      model::Shard slice;
      if (auto sl = f.metadata().find("slice." + param); sl != f.metadata().end()) {
        long long d = -1, b = -1, c = -1;
        char extra = 0;
        if (std::sscanf(sl->second.c_str(), "%lld:%lld:%lld%c", &d, &b, &c, &extra) != 3 || d < 0 || d > 1 || b < 0 || c < 1)
          fail(f.path(), ": the part of '", param, "' has the slice '", sl->second, "', expected DIM:BEGIN:COUNT");
        slice.dim = static_cast<int>(d), slice.begin = b, slice.count = c;
      }
      pieces[param].push_back({&f, &t, &v, master, offset, slice});
    }
  }
  auto& params = model.parameters();
  size_t used = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    auto found = pieces.find(params[i].name);
    if (found == pieces.end()) fail(dir, ": the moment shards hold no part of '", params[i].name, "'");
    std::vector<Piece>& parts = found->second;
    const ops::Shape& shape = params[i].full_shape;
    const int64_t numel = ops::shape_numel(shape);
    const int64_t rows = shape.empty() ? 1 : shape[0], cols = rows ? numel / std::max<int64_t>(rows, 1) : 0;
    std::vector<float> full(static_cast<size_t>(numel));
    const size_t with_master = static_cast<size_t>(std::count_if(parts.begin(), parts.end(), [](const Piece& p) { return p.master; }));
    if (with_master != 0 && with_master != parts.size())
      fail(dir, ": ", with_master, " of the ", parts.size(), " parts of '", params[i].name, "' hold master values");
    // Each part's elements go to their places in the whole tensor, which they must cover exactly once.
    std::vector<bool> covered(static_cast<size_t>(numel), false);
    for (int which = 0; which < (with_master ? 3 : 2); ++which) {
      for (const Piece& part : parts) {
        const model::StTensorInfo& t = which == 0 ? *part.m : which == 1 ? *part.v : *part.master;
        const model::Shard& sl = part.slice;
        const bool fits = !sl.split() ? part.offset + t.numel() <= numel
                                      : shape.size() == 2 && sl.begin + sl.count <= shape[static_cast<size_t>(sl.dim)] &&
                                            part.offset + t.numel() <= sl.count * (sl.dim == 0 ? cols : rows);
        if (!fits)
          fail(part.file->path(), ": a part of '", params[i].name, "' (offset ", part.offset, ", ", t.numel(),
               " elements) lies outside its ", ops::shape_string(shape), sl.split() ? " slice" : "");
        const std::string_view bytes = part.file->bytes(t);
        const float* from = reinterpret_cast<const float*>(bytes.data());
        // Element k of the part: its index in the whole tensor.
        const int64_t local_cols = sl.dim == 1 ? sl.count : cols;
        auto index = [&](int64_t k) {
          const int64_t j = part.offset + k;
          if (!sl.split()) return j;
          if (sl.dim == 0) return sl.begin * cols + j;
          return (j / local_cols) * cols + sl.begin + j % local_cols;
        };
        for (int64_t k = 0; k < t.numel();) {  // in runs that are contiguous in the whole tensor
          const int64_t at = index(k);
          const int64_t run = sl.dim == 1 ? std::min(t.numel() - k, local_cols - (part.offset + k) % local_cols)
                                          : t.numel() - k;
          const auto lo = covered.begin() + at, hi = lo + run;
          if (which == 0) {
            if (std::find(lo, hi, true) != hi)
              fail(part.file->path(), ": the parts of '", params[i].name, "' overlap (near element ", at, ")");
            std::fill(lo, hi, true);
          }
          std::memcpy(&full[static_cast<size_t>(at)], from + k, static_cast<size_t>(run) * sizeof(float));
          k += run;
        }
      }
      if (which == 0)
        if (const auto gap = std::find(covered.begin(), covered.end(), false); gap != covered.end())
          fail(dir, ": the moment shards do not cover '", params[i].name, "' (element ", gap - covered.begin(),
               " of ", numel, " is in no part)");
      if (which < 2) moments(i, which, model.slice_local(params[i], full));
      else model.set_value(params[i], model.slice_local(params[i], full));  // the fp32 master, exact
    }
    used += 2 * parts.size() + with_master;
  }
  if (used != tensors)
    fail(dir, ": the moment shards hold ", tensors - used, " tensors for parameters the model does not have");
}

}  // namespace

TrainerState load_checkpoint(const std::string& dir, model::Llama& model, const MomentSink& moments) {
  std::string problem = verify_checkpoint(dir);
  if (!problem.empty()) fail("checkpoint ", dir, ": ", problem);
  auto j = nlohmann::ordered_json::parse(read_file((fs::path(dir) / kStateFile).string()));
  TrainerState s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.optimizer_steps = j.at("optimizer_steps").get<int64_t>();
    s.consumed = j.at("consumed_samples").get<uint64_t>();
    s.stream.consumed = j.at("data_stream").at("consumed").get<uint64_t>();
    for (const auto& [prefix, n] : j.at("data_stream").at("per_source").items()) s.stream.per_source[prefix] = n.get<uint64_t>();
    s.data_order = j.at("data_stream").value("order", std::string("agpt"));  // older checkpoints: agpt only
    if (j.at("data_stream").contains("plan"))
      s.data_plan = parse_hex64(j.at("data_stream").at("plan").get<std::string>(), "data_stream.plan");
    s.rng_seed = j.at("rng").at("seed").get<uint64_t>();
    s.rng_state = parse_hex64(j.at("rng").at("state").get<std::string>(), "rng.state");
    s.config_hash = parse_hex64(j.at("config_hash").get<std::string>(), "config_hash");
    s.bad_streak = j.at("bad_streak").get<int64_t>();
    s.skipped = j.at("skipped_steps").get<int64_t>();
    s.loss_window = j.at("loss_window").get<std::vector<float>>();
    s.tokens = j.at("tokens").get<uint64_t>();
    s.ranks = j.value("ranks", int64_t{1});  // older checkpoints: one process
    s.elapsed = j.at("elapsed_s").get<double>();
    s.config = j.at("config");
  } catch (const nlohmann::json::exception& e) {
    fail("checkpoint ", dir, ": trainer_state.json is missing a field or has a wrong type (", e.what(), ")");
  }
  if (s.step < 0 || s.optimizer_steps < 0 || s.optimizer_steps > s.step)
    fail("checkpoint ", dir, ": inconsistent step counts (step ", s.step, ", optimizer steps ", s.optimizer_steps, ")");

  model::WeightReader weights(dir);
  model.load_weights(weights);
  if (!j.at("files").contains(kOptimizerFile)) {
    std::string problem;
    load_moment_shards(dir, listed_moment_shards(j.at("files"), &problem), model, moments);
    return s;
  }
  model::SafetensorsFile opt((fs::path(dir) / kOptimizerFile).string());
  auto& params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    for (int which = 0; which < 2; ++which) {
      std::string name = (which == 0 ? "exp_avg." : "exp_avg_sq.") + params[i].name;
      const model::StTensorInfo& info = opt.at(name);
      ops::Shape shape(info.shape.begin(), info.shape.end());
      if (shape != params[i].full_shape)
        fail(opt.path(), ": '", name, "' has shape ", info.shape_string(), ", the model needs ",
             ops::shape_string(params[i].full_shape));
      moments(i, which, model.slice_local(params[i], opt.read_f32(name)));
    }
  }
  if (opt.tensors().size() != 2 * params.size())
    fail(opt.path(), ": holds ", opt.tensors().size(), " tensors, the model has ", params.size(), " parameters (x2 moments)");
  return s;
}

}  // namespace agpt::train
