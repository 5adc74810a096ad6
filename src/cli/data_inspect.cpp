// `agpt data inspect`: what an indexed dataset holds — counts, dtype, document lengths, and (with a
// tokenizer) the first documents as text.
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "cli/command.h"
#include "dataset/indexed_dataset.h"
#include "dataset/indexed_stats.h"
#include "text/tokenizer.h"

namespace agpt::cli {
namespace {

std::string commas(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b < 10000) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  else if (b < 1000000) std::snprintf(buf, sizeof buf, "%.1f kB", b / 1e3);
  else if (b < 1000000000ull) std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  else std::snprintf(buf, sizeof buf, "%.1f GB", b / 1e9);
  return buf;
}

// Datasets up to this many tokens are scanned for token counts without --check-ids (seconds).
constexpr uint64_t kScanTokens = 1'000'000'000;

void setup_inspect(CLI::App& root) {
  CLI::App& data = command_group(root, "data", "prepare corpora: tokenize, inspect, mix");
  auto* cmd = data.add_subcommand("inspect", "show what an indexed dataset (PREFIX.bin + PREFIX.idx) holds");
  struct Args {
    std::string prefix, tokenizer;
    size_t docs = 3, chars = 300;
    bool check_ids = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("prefix", a->prefix, "dataset prefix (PREFIX.bin or PREFIX.idx work too)")->required();
  cmd->add_option("-t,--tokenizer", a->tokenizer, "decode the first documents with this tokenizer");
  cmd->add_option("--docs", a->docs, "documents to show decoded (with -t)")->capture_default_str();
  cmd->add_option("--chars", a->chars, "bytes of text shown per document")->capture_default_str();
  cmd->add_flag("--check-ids", a->check_ids,
                "scan every token for the largest id (and compare with -t's vocabulary); also gives the unigram "
                "entropy of datasets too large to be scanned by default");
  cmd->footer(
      "Opening validates the whole index (sizes, pointers, document indices, .bin size).\n"
      "Datasets of up to 1e9 tokens are scanned for the unigram entropy (larger ones with --check-ids).\n\n"
      "Examples:\n"
      "  agpt data inspect out/corpus\n"
      "  agpt data inspect out/corpus.idx -t tokenizer.json --docs 5\n"
      "  agpt data inspect out/corpus -t tokenizer.json --check-ids");
  set_action(cmd, [a] {
    dataset::IndexedDataset ds(a->prefix);
    auto st = dataset::length_stats(ds.sizes());
    std::string out;
    out += "dataset    " + ds.prefix() + "  (.bin " + human_bytes(file_size(ds.bin_path())) + ", .idx " +
           human_bytes(file_size(ds.idx_path())) + ")\n";
    out += cat("format     Megatron MMIDIDX v1, dtype ", dataset::dtype_name(ds.dtype()), " (",
               dataset::dtype_size(ds.dtype()), " bytes per token)\n");
    out += "documents  " + commas(ds.num_documents()) + "\n";
    const size_t megatron_docs = ds.document_indices().size() - 1;
    if (megatron_docs != ds.num_documents())
      out += "           (" + commas(megatron_docs) + " Megatron documents of several sequences each; agpt counts sequences)\n";
    out += "tokens     " + commas(ds.num_tokens()) + "\n";
    if (st.documents) {
      char mean[32];
      std::snprintf(mean, sizeof mean, "%.1f", st.mean);
      out += cat("length     min ", commas(static_cast<uint64_t>(st.min)), ", median ",
                 commas(static_cast<uint64_t>(st.median)), ", mean ", mean, ", max ",
                 commas(static_cast<uint64_t>(st.max)), " tokens; ", commas(st.empty), " empty\n");
      out += "\ndocument length (tokens), log2 buckets:\n" + dataset::format_length_histogram(st);
    }
    std::unique_ptr<text::Tokenizer> tok;
    if (!a->tokenizer.empty()) tok = text::load_tokenizer(a->tokenizer);
    // One scan of the tokens gives the entropy and the largest id; by default only where it is quick.
    std::optional<dataset::TokenCounts> counts;
    if (a->check_ids || ds.num_tokens() <= kScanTokens) {
      try {
        counts = dataset::token_counts(ds);
      } catch (const Error& e) {  // not token ids (negative, huge, float): the largest id is still shown
        out += cat("\nunigram entropy  [cannot compute: ", e.what(), "]\n");
      }
    }
    if (counts && counts->total > 0) {
      char h[32];
      std::snprintf(h, sizeof h, "%.2f", dataset::unigram_entropy(counts->counts));
      out += cat("\nunigram entropy  ", h, " nats/token over ", commas(counts->distinct()),
                 " distinct ids (a model must beat this loss to have learned more than token frequencies)\n");
    } else if (!counts && ds.num_tokens() > kScanTokens) {
      out += "\nunigram entropy  not computed for more than 1e9 tokens (pass --check-ids to scan them)\n";
    }
    if (a->check_ids) {
      int64_t mx = counts ? counts->max_id : dataset::max_token_id(ds);
      out += "\nlargest token id  " + std::to_string(mx);
      if (tok) {
        out += mx < static_cast<int64_t>(tok->vocab_size())
                   ? cat("  (fits the tokenizer's ", commas(tok->vocab_size()), " ids)")
                   : cat("  (NOT in the tokenizer's ", commas(tok->vocab_size()),
                         " ids: was this dataset written with another tokenizer?)");
      }
      out += "\n";
    }
    if (tok && a->docs > 0) {
      const size_t n = std::min(a->docs, ds.num_documents());
      out += cat("\nfirst ", n, " documents (decoded, ", a->chars, " bytes at most):\n");
      std::vector<uint32_t> ids;
      for (size_t i = 0; i < n; ++i) {
        const size_t len = static_cast<size_t>(ds.sizes()[i]);
        // Enough tokens for the preview: no token decodes to less than one byte... except specials,
        // so take a margin, and never more than the document.
        const size_t take = std::min(len, a->chars * 2 + 16);
        std::string shown;
        try {
          ds.read(i, 0, take, ids);
          shown = dataset::preview_text(tok->decode(ids), a->chars);
          if (take < len && shown.find("…") == std::string::npos) shown += "…";
        } catch (const Error& e) {
          shown = cat("[cannot decode: ", e.what(), "]");
        }
        out += cat("[", i, "] ", commas(len), " tokens: ", shown, "\n");
      }
    } else if (!tok && a->docs > 0 && ds.num_documents() > 0) {
      std::vector<uint32_t> ids;
      out += "\nfirst token ids (pass -t to decode):\n";
      for (size_t i = 0; i < std::min(a->docs, ds.num_documents()); ++i) {
        const size_t len = static_cast<size_t>(ds.sizes()[i]);
        std::string line = cat("[", i, "] ", commas(len), " tokens:");
        try {
          ds.read(i, 0, std::min<size_t>(len, 16), ids);
          for (uint32_t t : ids) line += cat(" ", t);
          if (len > 16) line += " …";
        } catch (const Error& e) {
          line += cat(" [", e.what(), "]");
        }
        out += line + "\n";
      }
    }
    std::cout << out;
  });
}

AGPT_COMMAND(41, setup_inspect);

}  // namespace
}  // namespace agpt::cli
