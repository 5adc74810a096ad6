// agpt: one binary, one subcommand per pipeline stage. See `agpt --help`.
#include <cstdio>

#include "base/error.h"
#include "base/log.h"
#include "base/progress.h"
#include "cli/command.h"

#ifndef AGPT_VERSION
#define AGPT_VERSION "0.1.0"
#endif

int main(int argc, char** argv) {
  CLI::App app{
      "agpt: build scientific foundation models from scratch — data, tokenizers, training, evaluation, serving."};
  app.name("agpt");
  app.set_version_flag("--version", AGPT_VERSION);
  app.require_subcommand(1);
  bool quiet = false, verbose = false;
  app.add_flag("-q,--quiet", quiet, "no progress output or info lines (warnings and errors still print)");
  app.add_flag("-v,--verbose", verbose, "debug log lines");
  app.footer(
      "Examples:\n"
      "  agpt tokenizer train --input docs/ --vocab-size 32000 --output tok.json\n"
      "  agpt tokenizer encode -t tok.json --input docs.jsonl --output ids.jsonl\n"
      "  agpt data tokenize -t tok.json --input 'corpus/*.jsonl.zst' --output-prefix out/corpus\n"
      "  agpt data inspect out/corpus -t tok.json\n"
      "Run `agpt <command> --help` for each command's options.");
  for (auto& setup : agpt::cli::registered_commands()) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (quiet) {
    agpt::set_log_level(agpt::LogLevel::kQuiet);
    agpt::Progress::set_enabled(false);
  } else if (verbose) {
    agpt::set_log_level(agpt::LogLevel::kDebug);
  }
  try {
    if (!agpt::cli::run_chosen_action(app)) {
      std::fprintf(stderr, "%s", app.help().c_str());
      return 1;
    }
  } catch (const agpt::Error& e) {
    std::fprintf(stderr, "agpt error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "agpt internal error: %s\n(please report this with the command line that caused it)\n",
                 e.what());
    return 2;
  }
  return 0;
}
