// `agpt data filter`: Gopher quality and repetition rules, C4 line cleanup and language
// identification, with every statistic written as Dolma-style attributes (docs/curation.md).
#include <toml++/toml.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "cli/command.h"
#include "curate/filter.h"

namespace agpt::cli {
namespace {

namespace fs = std::filesystem;

// A TOML config ([length] min_words = 50 ...) into config. toml++ is linked into the binary (the
// training config uses it) but not into agpt_curate, so the TOML side lives here and the library
// takes plain values (or JSON, see FilterConfig::merge_json).
void apply_toml(curate::FilterConfig& config, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse(read_file(path), path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    fail(path, ":", where.line, ":", where.column, ": TOML syntax error: ", e.description());
  }
  for (auto&& [section_key, section_node] : root) {
    const std::string section(section_key.str());
    const toml::table* table = section_node.as_table();
    if (!table)
      fail(path, ": '", section, "' must be a section such as [length], [quality], [repetition], [c4] or [langid]");
    for (auto&& [key, node] : *table) {
      const std::string name = section + "." + std::string(key.str());
      const std::string where = cat(path, ":", node.source().begin.line);
      curate::ConfigValue v;
      if (auto b = node.as_boolean()) v = b->get();
      else if (auto i = node.as_integer()) v = static_cast<double>(i->get());
      else if (auto f = node.as_floating_point()) v = f->get();
      else if (auto s = node.as_string()) v = s->get();
      else if (auto a = node.as_array()) {
        std::vector<std::string> list;
        for (auto&& e : *a) {
          auto s = e.as_string();
          if (!s) fail(where, ": ", name, " must be a list of strings");
          list.push_back(s->get());
        }
        v = list;
      } else {
        fail(where, ": ", name, " has an unsupported value type");
      }
      config.set(name, v, where);
    }
  }
}

void setup_filter(CLI::App& root) {
  CLI::App& data = command_group(root, "data", "prepare corpora: tokenize, inspect, mix");
  auto* cmd = data.add_subcommand(
      "filter", "remove low-quality documents (Gopher rules, C4 line cleanup, language) with auditable attributes");
  struct Args {
    curate::FilterOptions opt;
    std::string output, report, removed, config, attributes, from_attributes, langid_model, languages;
    std::string on_error = "skip";
    std::optional<double> min_score;
    bool c4 = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-i,--input", a->opt.inputs, "JSONL (.gz/.zst) or text files, directories, glob patterns")->required();
  cmd->add_option("-o,--output", a->output,
                  "kept documents, Dolma JSONL (.jsonl, .gz, .zst); a directory gets filter.jsonl.zst")
      ->required();
  cmd->add_option("--config", a->config, "thresholds: a TOML file (examples/filter.toml) or a JSON file (.json)");
  cmd->add_option("--attributes", a->attributes,
                  "write every document's statistics here: one Dolma attributes JSONL per input file");
  cmd->add_option("--from-attributes", a->from_attributes,
                  "re-decide from the attributes a previous run wrote here, without computing them again");
  cmd->add_option("--langid-model", a->langid_model,
                  "language-identification model (agpt data langid train): adds agpt_langid__<lang> scores");
  cmd->add_option("--languages", a->languages, "keep only documents whose most probable language is one of these (en,fr)");
  cmd->add_option("--min-lang-score", a->min_score, "with --languages: the least score of that language (default 0.5)");
  cmd->add_flag("--c4", a->c4, "C4-style line cleanup and C4's document rules (also [c4] enabled = true)");
  cmd->add_option("--report", a->report, "write the counts (documents and bytes, removed by rule) as JSON");
  cmd->add_option("--removed", a->removed, "write every removed document as JSONL: id, reason, origin, text");
  cmd->add_option("--on-error", a->on_error, "bad input lines: skip (count them) or fail")
      ->check(CLI::IsMember({"skip", "fail"}))
      ->capture_default_str();
  cmd->add_option("--batch-docs", a->opt.batch_documents, "documents per parallel batch")->capture_default_str();
  cmd->add_flag("--resume", a->opt.resume,
                "continue an interrupted run (OUTPUT.progress): skip the input files it finished, cut the "
                "outputs (OUTPUT.partial) after the last one");
  cmd->add_option("--stop-after", a->opt.stop_after_files, "stop after N input files, as if interrupted (for tests)")
      ->group("");
  add_threads_flag(*cmd, a->opt.threads);
  cmd->footer(
      "Rules (Gopher's thresholds by default; a negative threshold turns a rule off): length (words 50..100000),\n"
      "mean word length 3..10, '#' and ellipsis per word <= 0.1, bullet lines <= 90%, ellipsis lines <= 30%,\n"
      "words with a letter >= 80%, duplicate lines/paragraphs (by count <= 30%, by bytes <= 20%), most frequent\n"
      "2/3/4-gram <= 20/18/16% of the bytes, repeated 5..10-grams <= 15..10%. --c4 adds C4's line cleanup.\n"
      "The first failing rule is the reason a document is removed.\n"
      "Resumable per input file: the outputs are written as OUTPUT.partial (one gzip member or zstd frame per\n"
      "input file) with OUTPUT.progress beside them; after an interruption, the same command with --resume\n"
      "skips the input files done and gives the same bytes (outputs, attributes, report) as an uninterrupted\n"
      "run, for any -j. A resume with other settings or inputs is refused. See docs/curation.md.\n\n"
      "Examples:\n"
      "  agpt data filter -i 'corpus/*.jsonl.zst' -o out/filtered/ --attributes out/attrs --report out/filter.json\n"
      "  agpt data filter -i corpus/ -o out/en-fr.jsonl.zst --langid-model langid.bin --languages en,fr --c4\n"
      "  agpt data filter -i corpus/ -o out/strict.jsonl.zst --from-attributes out/attrs --config strict.toml\n"
      "  agpt data filter -i 'corpus/*.jsonl.zst' -o out/filtered/ --attributes out/attrs --resume   # after an interruption");
  set_action(cmd, [a] {
    auto& opt = a->opt;
    opt.on_error = a->on_error == "fail" ? corpus::OnError::kFail : corpus::OnError::kSkip;
    if (!a->attributes.empty() && !a->from_attributes.empty())
      fail("--attributes writes attributes and --from-attributes reads them: give one of them");
    if (!a->config.empty()) {
      if (!file_exists(a->config)) fail("--config ", a->config, ": no such file");
      if (a->config.ends_with(".json")) opt.config.merge_json(read_file(a->config), a->config);
      else apply_toml(opt.config, a->config);
    }
    if (a->c4) opt.config.c4 = true;
    if (!a->languages.empty()) opt.config.set("langid.languages", a->languages, "--languages");
    if (a->min_score) opt.config.set("langid.min_score", *a->min_score, "--min-lang-score");
    if (!a->langid_model.empty()) opt.config.langid_model = a->langid_model;
    opt.from_attributes = !a->from_attributes.empty();
    opt.attributes_dir = opt.from_attributes ? a->from_attributes : a->attributes;
    if (opt.from_attributes && !fs::is_directory(opt.attributes_dir))
      fail("--from-attributes ", opt.attributes_dir, ": no such directory (write one with --attributes first)");
    std::unique_ptr<curate::LangIdModel> model;
    if (!opt.from_attributes && !opt.config.langid_model.empty()) {
      model = std::make_unique<curate::LangIdModel>(curate::LangIdModel::load(opt.config.langid_model));
      opt.langid = model.get();
    }
    opt.output = output_file(a->output, "filter.jsonl.zst");
    if (!a->removed.empty()) opt.removed_output = output_file(a->removed, "removed.jsonl.zst");
    auto report = curate::run_filter(opt, {});
    if (!a->report.empty()) write_file_atomic(a->report, report.to_json());
    std::cerr << report.read.summary() << report.table();
    std::cerr << "wrote " << report.documents_kept << " documents to " << opt.output << "\n";
    if (!opt.attributes_dir.empty() && !opt.from_attributes)
      std::cerr << "wrote attributes of " << report.attribute_files.size() << " input files to " << opt.attributes_dir
                << "\n";
  });
}

AGPT_COMMAND(48, setup_filter);

}  // namespace
}  // namespace agpt::cli
