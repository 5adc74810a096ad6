// `agpt data dedup`: exact, paragraph-level exact and MinHash LSH near-duplicate removal.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "cli/command.h"
#include "corpus/json.h"
#include "corpus/lines.h"
#include "corpus/writer.h"
#include "curate/dedup.h"
#include "curate/dedup_dist.h"
#include "dist/communicator.h"
#include "base/log.h"
#include "base/progress.h"

namespace agpt::cli {
namespace {

namespace fs = std::filesystem;

struct DedupArgs {
  curate::DedupOptions opt;
  std::string output, report, removed, on_error = "skip";
  bool no_exact = false, no_near = false;
  double memory_mb = 0, exchange_mb = 0;
};
void run(const DedupArgs& a, dist::Communicator* comm);

void setup_dedup(CLI::App& root) {
  CLI::App& data = command_group(root, "data", "prepare corpora: tokenize, inspect, mix");
  auto* cmd = data.add_subcommand("dedup", "remove exact, paragraph-level and near-duplicate (MinHash LSH) documents");
  auto a = std::make_shared<DedupArgs>();
  cmd->add_option("-i,--input", a->opt.inputs, "JSONL (.gz/.zst) or text files, directories, glob patterns")->required();
  cmd->add_option("-o,--output", a->output,
                  "kept documents, Dolma JSONL (.jsonl, .jsonl.gz, .jsonl.zst); a directory gets dedup.jsonl.zst")
      ->required();
  cmd->add_option("--report", a->report, "write the counts (documents and bytes per stage and reason) as JSON");
  cmd->add_option("--removed", a->removed,
                  "write every removed document as JSONL: id, reason, duplicate_of, origin, text (for audits)");
  cmd->add_flag("--paragraphs", a->opt.paragraphs, "also remove paragraphs seen in earlier documents (exact, normalised)");
  cmd->add_flag("--no-exact", a->no_exact, "skip exact document dedup");
  cmd->add_flag("--no-near", a->no_near, "skip MinHash near-duplicate dedup");
  cmd->add_option("--ngram", a->opt.minhash.ngram, "shingle size (words, or characters with --char-ngrams)")
      ->capture_default_str();
  cmd->add_flag("--char-ngrams", a->opt.minhash.char_ngrams, "character n-gram shingles instead of word n-grams");
  cmd->add_option("--bands", a->opt.minhash.bands, "LSH bands")->capture_default_str();
  cmd->add_option("--rows", a->opt.minhash.rows, "signature values per band")->capture_default_str();
  cmd->add_option("--seed", a->opt.minhash.seed, "seed of the MinHash permutations")->capture_default_str();
  cmd->add_option("--threshold", a->opt.threshold,
                  "0: every LSH bucket collision is a duplicate (datatrove); else also require estimated Jaccard >= this")
      ->capture_default_str();
  cmd->add_option("--on-error", a->on_error, "bad input lines: skip (count them) or fail")
      ->check(CLI::IsMember({"skip", "fail"}))
      ->capture_default_str();
  cmd->add_option("--batch-docs", a->opt.batch_documents, "documents per hashing batch")->capture_default_str();
  cmd->add_option("--memory-mb", a->memory_mb,
                  "memory for the near stage's band-key table per process (MB); beyond it sorted runs spill to "
                  "temporary files and are merged (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--exchange-mb", a->exchange_mb,
                  "under mpirun: band keys one rank sends per round of the exchange (MB; 0: --memory-mb / ranks, "
                  "or one round without --memory-mb)")
      ->capture_default_str();
  cmd->add_option("--tmp-dir", a->opt.tmp_dir, "where spilled runs go (default: $TMPDIR or /tmp)");
  add_threads_flag(*cmd, a->opt.threads);
  cmd->footer(
      "Stages, in order: paragraphs (with --paragraphs), exact (normalised text: ASCII lowercase, ASCII\n"
      "punctuation deleted, whitespace collapsed; 128-bit hash), near (MinHash LSH over word 5-grams,\n"
      "14 bands x 8 rows). The first document in input order is kept in each group of duplicates.\n"
      "Reads the inputs twice. The output is identical for any -j, and under mpirun -np N (each rank\n"
      "reads, hashes and writes its share of the input files; rank 0 joins the parts). See docs/curation.md.\n\n"
      "Examples:\n"
      "  agpt data dedup -i 'corpus/*.jsonl.zst' -o out/dedup.jsonl.zst --report out/dedup.json\n"
      "  agpt data dedup -i papers/ -o out/ --paragraphs --removed out/removed.jsonl.zst --threshold 0.8\n"
      "  mpirun -np 4 agpt data dedup -i 'corpus/*.jsonl.zst' -o out/dedup.jsonl.zst");
  set_action(cmd, [a] {
    a->opt.on_error = a->on_error == "fail" ? corpus::OnError::kFail : corpus::OnError::kSkip;
    a->opt.exact = !a->no_exact;
    a->opt.near = !a->no_near;
    if (a->opt.batch_documents == 0) fail("--batch-docs must be at least 1");
    if (!(a->memory_mb >= 0) || a->memory_mb > 1e9) fail("--memory-mb must be a number of MB >= 0 (0: no limit)");
    a->opt.memory_bytes = static_cast<uint64_t>(a->memory_mb * 1024 * 1024);
    if (a->memory_mb > 0 && a->opt.memory_bytes == 0) a->opt.memory_bytes = 1;
    if (!(a->exchange_mb >= 0) || a->exchange_mb > 1e9) fail("--exchange-mb must be a number of MB >= 0");
    a->opt.exchange_bytes = static_cast<uint64_t>(a->exchange_mb * 1024 * 1024);
    if (a->exchange_mb > 0 && a->opt.exchange_bytes == 0) a->opt.exchange_bytes = 1;
    curate::MinHasher check(a->opt.minhash);  // fails early on bad --ngram/--bands/--rows
    if (a->opt.threshold < 0 || a->opt.threshold > 1) fail("--threshold must be within [0, 1]");
    // Under mpirun/mpiexec the ranks share the work (dedup_dist.h); rank 0 joins the outputs and
    // speaks for the job. Alone, the world is this process and nothing changes.
    std::unique_ptr<dist::Communicator> world = dist::make_world_communicator();
    if (world->size() <= 1) {
      run(*a, nullptr);
      return;
    }
    if (world->rank() != 0) {
      set_log_level(LogLevel::kQuiet);
      Progress::set_enabled(false);
    }
    try {
      run(*a, world.get());
    } catch (const std::exception& e) {
      // The other ranks may be waiting in a collective for this one: end the whole job now.
      std::fprintf(stderr, "agpt error (rank %d of %d, host %s): %s\n", world->rank(), world->size(),
                   world->host().c_str(), e.what());
      world->abort(1);
    }
  });
}

// Appends the lines of a part file (plain JSONL written by another rank) to out, then removes it.
void append_part(corpus::DocumentWriter& out, const std::string& part) {
  {
    corpus::LineReader in(part);
    std::string_view line;
    while (in.next(line)) out.write_line(line);
  }
  std::error_code ec;
  fs::remove(part, ec);
}

// The command on one rank (comm == nullptr: one process). Under MPI every rank writes the documents of
// its own input files: rank 0 into the outputs, rank r > 0 into plain part files beside them
// (OUTPUT.rank<r>.<token>.part), which rank 0 then appends in rank order, so the outputs are byte for byte
// one process's. The output's directory must be one that every rank can write (as the inputs must be
// readable by every rank).
void run(const DedupArgs& a, dist::Communicator* comm) {
  const int rank = comm != nullptr ? comm->rank() : 0, ranks = comm != nullptr ? comm->size() : 1;
  const std::string kept_path = output_file(a.output, "dedup.jsonl.zst");
  const std::string removed_path = a.removed.empty() ? std::string() : output_file(a.removed, "dedup.jsonl.zst");
  std::string token;
  if (comm != nullptr) {
    if (rank == 0)
      token = std::to_string(::getpid()) + "-" +
              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000007);
    comm->broadcast(token, 0);
  }
  auto part = [&](const std::string& path, int r) {
    return r == 0 ? path : path + ".rank" + std::to_string(r) + "." + token + ".part";
  };
  {
    corpus::DocumentWriter kept(part(kept_path, rank));
    std::unique_ptr<corpus::DocumentWriter> removed;
    if (!a.removed.empty()) removed = std::make_unique<corpus::DocumentWriter>(part(removed_path, rank));
    std::string line;
    curate::DedupSink sink;
    sink.kept = [&](const corpus::Document& d) { kept.write(d); };
    if (removed)
      sink.removed = [&](const corpus::Document& d, const char* reason, const std::string& of_id) {
        line = "{\"id\":";
        corpus::append_json_string(line, d.id);
        line += ",\"reason\":";
        corpus::append_json_string(line, reason);
        if (!of_id.empty()) {
          line += ",\"duplicate_of\":";
          corpus::append_json_string(line, of_id);
        }
        line += ",\"origin\":";
        corpus::append_json_string(line, d.origin);
        line += ",\"text\":";
        corpus::append_json_string(line, d.text);
        line += "}";
        removed->write_line(line);
      };
    auto report = comm != nullptr ? curate::run_dedup_distributed(a.opt, sink, *comm) : curate::run_dedup(a.opt, sink);
    if (rank != 0) {
      kept.close();
      if (removed) removed->close();
    }
    if (comm != nullptr) comm->barrier();  // every rank's part is complete
    if (rank != 0) return;
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 1; r < ranks; ++r) {
      append_part(kept, part(kept_path, r));
      if (removed) append_part(*removed, part(removed_path, r));
    }
    kept.close();
    if (removed) removed->close();
    report.seconds_pass2 += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!a.report.empty()) write_file_atomic(a.report, report.to_json());
    std::cerr << report.read.summary() << report.table();
    std::cerr << "wrote " << report.documents_kept << " documents to " << kept.path();
    if (comm != nullptr) std::cerr << " (" << comm->size() << " ranks)";
    std::cerr << "\n";
  }
}

AGPT_COMMAND(47, setup_dedup);

}  // namespace
}  // namespace agpt::cli
