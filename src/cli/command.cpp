#include "cli/command.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <utility>

#include "base/error.h"

namespace agpt::cli {
namespace {
std::vector<std::pair<int, CommandSetup>>& registry() {
  static std::vector<std::pair<int, CommandSetup>> r;
  return r;
}
}  // namespace

void register_command(int order, CommandSetup setup) { registry().emplace_back(order, std::move(setup)); }

std::vector<CommandSetup> registered_commands() {
  auto r = registry();
  std::stable_sort(r.begin(), r.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<CommandSetup> out;
  for (auto& e : r) out.push_back(e.second);
  return out;
}

CLI::App& command_group(CLI::App& root, const std::string& name, const std::string& description) {
  for (CLI::App* sub : root.get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() == name) return *sub;
  CLI::App* group = root.add_subcommand(name, description);
  group->require_subcommand(1);
  return *group;
}

namespace {
std::map<const CLI::App*, std::function<void()>>& actions() {
  static std::map<const CLI::App*, std::function<void()>> a;
  return a;
}
}  // namespace

void set_action(CLI::App* command, std::function<void()> action) { actions()[command] = std::move(action); }

bool run_chosen_action(CLI::App& root) {
  CLI::App* node = &root;
  for (;;) {
    auto chosen = node->get_subcommands();
    if (chosen.empty()) break;
    node = chosen.front();
  }
  auto it = actions().find(node);
  if (it == actions().end()) return false;
  it->second();
  return true;
}

void add_threads_flag(CLI::App& cmd, int& threads) {
  cmd.add_option("-j,--threads", threads, "worker threads (0 = all cores); output is identical for any value")
      ->capture_default_str();
}

std::string output_file(const std::string& out, const std::string& default_name) {
  namespace fs = std::filesystem;
  if (out.empty()) fail("an output path is empty: give a file or a directory");
  if (out.back() == '/' || fs::is_directory(out)) {
    fs::create_directories(out);
    return (fs::path(out) / default_name).string();
  }
  auto parent = fs::path(out).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  return out;
}

}  // namespace agpt::cli
