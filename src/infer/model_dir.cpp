#include "infer/model_dir.h"

#include <filesystem>
#include <fstream>

#include "base/error.h"

namespace agpt::infer {
namespace fs = std::filesystem;

namespace {
// The checkpoint a `latest` file names (the trainer writes "step_0000200\n"), inside root.
std::string follow_latest(const fs::path& root) {
  std::ifstream in(root / "latest");
  std::string name;
  std::getline(in, name);
  while (!name.empty() && (name.back() == '\r' || name.back() == ' ')) name.pop_back();
  if (name.empty()) fail((root / "latest").string(), " is empty; it should name a checkpoint such as step_0000100");
  fs::path dir = root / name;
  if (!fs::exists(dir / "config.json"))
    fail((root / "latest").string(), " names ", dir.string(), ", which has no config.json");
  return dir.string();
}
}  // namespace

std::string resolve_model_dir(const std::string& path) {
  fs::path p(path);
  if (!fs::exists(p)) fail("model directory ", path, " does not exist");
  if (!fs::is_directory(p)) fail(path, " is not a directory (give a model directory holding config.json)");
  if (fs::exists(p / "config.json")) return path;
  if (fs::exists(p / "checkpoints" / "latest")) return follow_latest(p / "checkpoints");
  if (fs::exists(p / "latest")) return follow_latest(p);
  fail(path, " is neither a model directory (no config.json) nor a training run (no checkpoints/latest)");
}

}  // namespace agpt::infer
