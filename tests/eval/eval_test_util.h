// Helpers for the evaluation tests: a temporary directory with files, and a tiny random Llama with
// the in-memory BPE tokenizer of the inference tests, optionally saved as a model directory.
#pragma once
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "../infer/infer_test_util.h"
#include "ops/cpu/cpu_backend.h"

namespace agpt::eval::testing {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("agpt-eval-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path() const { return path_.string(); }
  // Writes text to name (folders created) and returns the full path.
  std::string write(const std::string& name, const std::string& text) const {
    std::filesystem::path p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

// A small multiple-choice data set over the tokenizer's words: question, choices, answer index.
inline std::string mc_jsonl(int n, int offset = 0) {
  const char* words[] = {"the", "model", "learns", "from", "data", "and", "energy", "of", "a", "graph", "cell"};
  std::string out;
  for (int i = offset; i < offset + n; ++i) {
    out += "{\"question\": \"the " + std::string(words[i % 11]) + " of " + words[(i * 3) % 11] + "\", \"choices\": [\"" +
           words[(i + 1) % 11] + "\", \"" + words[(i + 2) % 11] + " " + words[(i + 5) % 11] + "\", \"" + words[(i + 4) % 11] +
           "\"], \"answer\": " + std::to_string(i % 3) + "}\n";
  }
  return out;
}

inline std::string mc_yaml(const std::string& name, const std::string& extra = "") {
  return "task: " + name +
         "\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: test.jsonl\n    dev: dev.jsonl\n"
         "test_split: test\nfewshot_split: dev\noutput_type: multiple_choice\n"
         "doc_to_text: \"Q: {{question}}\\nA:\"\ndoc_to_choice: \"{{choices}}\"\ndoc_to_target: answer\n"
         "metric_list:\n  - metric: acc\n  - metric: acc_norm\n" + extra;
}

}  // namespace agpt::eval::testing
