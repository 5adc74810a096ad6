// How subcommands join the `agpt` binary: each cli/*.cpp file registers a setup function with
// AGPT_COMMAND; main() calls them all. Command files stay thin: parse flags, call the library, print.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace agpt::cli {

using CommandSetup = std::function<void(CLI::App& root)>;

// order: lower comes first in `agpt --help`.
void register_command(int order, CommandSetup setup);
std::vector<CommandSetup> registered_commands();

// The subcommand group `name` of root (e.g. "data", "tokenizer"), created on first use.
CLI::App& command_group(CLI::App& root, const std::string& name, const std::string& description);

// The work a (leaf) subcommand does; main() runs it after parsing and after global flags apply.
void set_action(CLI::App* command, std::function<void()> action);
// Runs the action of the subcommand chosen on the command line; false if it has none.
bool run_chosen_action(CLI::App& root);

// Shared flag helpers so every command spells them the same way.
void add_threads_flag(CLI::App& cmd, int& threads);

// An output flag's path: a file (its parent directories created), or a directory (existing, or
// written with a trailing '/') that receives default_name. Fails on an empty path.
std::string output_file(const std::string& out, const std::string& default_name);

struct Registrar {
  Registrar(int order, CommandSetup setup) { register_command(order, std::move(setup)); }
};

}  // namespace agpt::cli

#define AGPT_CONCAT_INNER(a, b) a##b
#define AGPT_CONCAT(a, b) AGPT_CONCAT_INNER(a, b)
// Registers a command setup function at static-initialisation time.
#define AGPT_COMMAND(order, fn) \
  static ::agpt::cli::Registrar AGPT_CONCAT(agpt_registrar_, __LINE__)(order, fn)
