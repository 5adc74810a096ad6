// `agpt data langid train|eval|predict`: the language-identification model of `agpt data filter`.
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/parallel.h"
#include "base/progress.h"
#include "cli/command.h"
#include "corpus/json.h"
#include "corpus/reader.h"
#include "corpus/writer.h"
#include "curate/langid.h"

namespace agpt::cli {
namespace {

struct LabelledInput {
  std::string lang, path;
};

// "fr=path/to/fr/" -> {fr, path}.
std::vector<LabelledInput> parse_labelled(const std::vector<std::string>& specs) {
  std::vector<LabelledInput> out;
  for (const auto& s : specs) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
      fail("--input ", s, ": expected LANG=PATH, e.g. --input fr=manpages/fr/ (PATH: files, directories, globs)");
    std::string lang = s.substr(0, eq);
    curate::check_language_code(lang, "--input " + s);
    out.push_back({lang, s.substr(eq + 1)});
  }
  return out;
}

// Reads the documents of one labelled input in batches; calls fn(batch of texts).
template <typename Fn>
corpus::ReadReport read_texts(const std::string& path, const std::string& label, Fn fn) {
  corpus::DocumentReader reader({path}, corpus::OnError::kSkip);
  Progress progress(label, reader.bytes_total_compressed(), "B");
  std::vector<std::string> texts;
  corpus::Document doc;
  uint64_t seen = 0;
  bool more = true;
  while (more) {
    texts.clear();
    while (texts.size() < 256 && (more = reader.next(doc))) texts.push_back(std::move(doc.text));
    if (texts.empty()) break;
    if (!fn(texts)) break;
    const uint64_t now = reader.bytes_read_compressed();
    progress.add(now - std::min(now, seen));
    seen = std::max(seen, now);
  }
  progress.finish();
  return reader.report();
}

void setup_train(CLI::App& group) {
  auto* cmd = group.add_subcommand("train", "train a character n-gram naive Bayes language identifier");
  struct Args {
    std::vector<std::string> inputs;
    std::string output;
    curate::LangIdOptions opt;
    uint64_t max_bytes = 0;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-i,--input", a->inputs, "LANG=PATH (PATH: JSONL or text files, directories, globs); repeat")
      ->required();
  cmd->add_option("-o,--output", a->output, "the model file")->required();
  cmd->add_option("--min-n", a->opt.min_n, "shortest character n-gram")->capture_default_str();
  cmd->add_option("--max-n", a->opt.max_n, "longest character n-gram (at most 5)")->capture_default_str();
  cmd->add_option("--buckets-log2", a->opt.log2_buckets, "hash features into 2^this buckets (12..24)")
      ->capture_default_str();
  cmd->add_option("--alpha", a->opt.alpha, "additive smoothing")->capture_default_str();
  cmd->add_option("--max-chars", a->opt.max_chars, "characters of a text looked at when classifying (0: all)")
      ->capture_default_str();
  cmd->add_option("--max-bytes-per-language", a->max_bytes,
                  "train on at most this many bytes of text per language (0: all); balances the languages")
      ->capture_default_str();
  add_threads_flag(*cmd, a->threads);
  cmd->footer(
      "The model is a multinomial naive Bayes over hashed character 1..3-grams (lowercased; non-letters become\n"
      "one space), uniform priors. scripts/make-langid-model.sh trains one from Debian's translated manual pages.\n\n"
      "Examples:\n"
      "  agpt data langid train -i en=text/en/ -i fr=text/fr/ -i ja=text/ja.jsonl -o langid.bin\n"
      "  agpt data langid train -i 'de=pages/de/*.txt' -i es=pages/es/ -o langid.bin --max-bytes-per-language 20000000");
  set_action(cmd, [a] {
    auto inputs = parse_labelled(a->inputs);
    std::vector<std::string> langs;
    for (const auto& in : inputs)
      if (std::find(langs.begin(), langs.end(), in.lang) == langs.end()) langs.push_back(in.lang);
    curate::LangIdTrainer trainer(a->opt, langs);
    curate::LangIdOptions feature_opt = a->opt;
    feature_opt.max_chars = 0;  // training looks at all of every text
    std::map<std::string, uint64_t> bytes;
    for (const auto& in : inputs) {
      const int l = static_cast<int>(std::find(langs.begin(), langs.end(), in.lang) - langs.begin());
      std::vector<std::vector<uint32_t>> features;
      auto rep = read_texts(in.path, "langid train " + in.lang, [&](std::vector<std::string>& texts) {
        if (a->max_bytes) {  // keep the texts that fit the budget, in order
          size_t keep = 0;
          while (keep < texts.size() && bytes[in.lang] < a->max_bytes) bytes[in.lang] += texts[keep++].size();
          texts.resize(keep);
        } else {
          for (const auto& t : texts) bytes[in.lang] += t.size();
        }
        features.assign(texts.size(), {});
        parallel_for(texts.size(), a->threads,
                     [&](size_t i) { curate::langid_features(texts[i], feature_opt, features[i]); });
        for (const auto& f : features) trainer.add(l, f);
        return a->max_bytes == 0 || bytes[in.lang] < a->max_bytes;
      });
      if (rep.skipped > 0) std::cerr << rep.summary();
    }
    curate::LangIdModel model = trainer.finish();
    model.save(a->output);
    for (size_t l = 0; l < langs.size(); ++l)
      std::cerr << "  " << langs[l] << ": " << trainer.texts_of(static_cast<int>(l)) << " texts, " << bytes[langs[l]]
                << " bytes, " << trainer.features_of(static_cast<int>(l)) << " n-grams\n";
    std::cerr << "wrote " << a->output << " (" << langs.size() << " languages, " << file_size(a->output) << " bytes)\n";
  });
}

void setup_eval(CLI::App& group) {
  auto* cmd = group.add_subcommand("eval", "precision and recall of a language identifier on labelled texts");
  struct Args {
    std::vector<std::string> inputs;
    std::string model, report;
    uint32_t snippet = 0;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-m,--model", a->model, "the model (agpt data langid train)")->required();
  cmd->add_option("-i,--input", a->inputs, "LANG=PATH of held-out texts; repeat")->required();
  cmd->add_option("--snippet-chars", a->snippet,
                  "classify pieces of at least this many characters (whole lines joined) instead of whole documents")
      ->capture_default_str();
  cmd->add_option("--report", a->report, "write precision, recall and the confusion matrix as JSON");
  add_threads_flag(*cmd, a->threads);
  cmd->footer(
      "Examples:\n"
      "  agpt data langid eval -m langid.bin -i en=held-out/en/ -i fr=held-out/fr/ --snippet-chars 100\n");
  set_action(cmd, [a] {
    auto model = curate::LangIdModel::load(a->model);
    auto inputs = parse_labelled(a->inputs);
    curate::LangIdEvaluation ev;
    ev.languages = model.languages();
    for (const auto& in : inputs)
      if (model.language_index(in.lang) < 0) ev.languages.push_back(in.lang);  // a row the model never predicts
    const size_t L = ev.languages.size();
    ev.confusion.assign(L, std::vector<uint64_t>(L, 0));
    for (const auto& in : inputs) {
      const size_t truth = static_cast<size_t>(
          std::find(ev.languages.begin(), ev.languages.end(), in.lang) - ev.languages.begin());
      read_texts(in.path, "langid eval " + in.lang, [&](std::vector<std::string>& texts) {
        std::vector<std::string_view> pieces;
        for (const auto& t : texts)
          for (auto s : curate::langid_snippets(t, a->snippet)) pieces.push_back(s);
        std::vector<int> predicted(pieces.size());
        parallel_for(pieces.size(), a->threads, [&](size_t i) { predicted[i] = model.best(pieces[i]).first; });
        for (int p : predicted) ++ev.confusion[truth][static_cast<size_t>(p)];
        return true;
      });
    }
    std::cout << ev.table();
    if (!a->report.empty()) write_file_atomic(a->report, ev.to_json());
  });
}

void setup_predict(CLI::App& group) {
  auto* cmd = group.add_subcommand("predict", "the most probable language of each document");
  struct Args {
    std::vector<std::string> inputs;
    std::string model, output;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-m,--model", a->model, "the model (agpt data langid train)")->required();
  cmd->add_option("-i,--input", a->inputs, "JSONL or text files, directories, globs")->required();
  cmd->add_option("-o,--output", a->output, "JSONL of {\"id\", \"lang\", \"score\"} (default: stdout)");
  add_threads_flag(*cmd, a->threads);
  cmd->footer("Examples:\n  agpt data langid predict -m langid.bin -i docs.jsonl\n");
  set_action(cmd, [a] {
    auto model = curate::LangIdModel::load(a->model);
    std::unique_ptr<corpus::LineWriter> out;
    if (!a->output.empty()) out = std::make_unique<corpus::LineWriter>(a->output);
    corpus::DocumentReader reader(a->inputs, corpus::OnError::kSkip);
    std::vector<corpus::Document> docs(256);
    std::vector<std::pair<int, double>> best(docs.size());
    bool more = true;
    std::string line;
    while (more) {
      size_t n = 0;
      while (n < docs.size() && (more = reader.next(docs[n]))) ++n;
      parallel_for(n, a->threads, [&](size_t i) { best[i] = model.best(docs[i].text); });
      for (size_t i = 0; i < n; ++i) {
        line = "{\"id\":";
        corpus::append_json_string(line, docs[i].id);
        line += ",\"lang\":";
        corpus::append_json_string(line, model.languages()[static_cast<size_t>(best[i].first)]);
        line += ",\"score\":" + std::to_string(best[i].second) + "}";
        if (out) out->write_line(line);
        else std::cout << line << "\n";
      }
    }
    if (out) out->close();
    std::cerr << reader.report().summary();
  });
}

void setup_langid(CLI::App& root) {
  CLI::App& data = command_group(root, "data", "prepare corpora: tokenize, inspect, mix");
  CLI::App& group = command_group(data, "langid", "language identification: train, evaluate, predict");
  setup_train(group);
  setup_eval(group);
  setup_predict(group);
}

AGPT_COMMAND(49, setup_langid);

}  // namespace
}  // namespace agpt::cli
