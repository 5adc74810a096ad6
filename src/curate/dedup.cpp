#include "curate/dedup.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/parallel.h"
#include "base/progress.h"
#include "corpus/reader.h"

namespace agpt::curate {

const char* fate_reason(Fate f) {
  switch (f) {
    case Fate::kKept: return "kept";
    case Fate::kAllParagraphs: return "all paragraphs duplicated";
    case Fate::kExact: return "exact duplicate";
    case Fate::kNear: return "near duplicate";
  }
  return "?";
}

std::vector<std::string_view> split_paragraphs(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = std::string_view::npos, end = 0, pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    bool blank = line.find_first_not_of(" \t\r") == std::string_view::npos;
    if (!blank) {
      if (start == std::string_view::npos) start = pos;
      end = nl;
    } else if (start != std::string_view::npos) {
      out.push_back(text.substr(start, end - start));
      start = std::string_view::npos;
    }
    pos = nl + 1;
  }
  if (start != std::string_view::npos) out.push_back(text.substr(start, end - start));
  return out;
}

std::string join_kept_paragraphs(std::string_view original, const std::vector<uint32_t>& removed) {
  auto paras = split_paragraphs(original);
  std::string out;
  size_t r = 0;
  for (size_t p = 0; p < paras.size(); ++p) {
    if (r < removed.size() && removed[r] == p) {
      ++r;
      continue;
    }
    if (!out.empty()) out += "\n\n";
    out += paras[p];
  }
  return out;
}

Deduper::Deduper(const DedupOptions& opt)
    : opt_(opt), hasher_(opt.minhash), buckets_(opt.memory_bytes, opt.tmp_dir) {
  if (opt.threshold < 0 || opt.threshold > 1) fail("dedup: --threshold must be within [0, 1] (got ", opt.threshold, ")");
  report_.paragraphs_on = opt.paragraphs;
  report_.exact_on = opt.exact;
  report_.near_on = opt.near;
  report_.minhash = opt.minhash;
  report_.threshold = opt.threshold;
}

void Deduper::add(const std::vector<std::string_view>& texts) {
  if (finished_) fail("Deduper::add after finish");
  const size_t n = texts.size();
  const size_t base = fate_.size();
  if (base + n >= 0xFFFFFFFFull) fail("dedup: more than 4 billion documents in one process");
  fate_.resize(base + n, Fate::kKept);
  of_.resize(base + n);
  for (size_t i = 0; i < n; ++i) of_[base + i] = static_cast<uint32_t>(base + i);
  bytes_after_paragraphs_.resize(base + n);
  for (auto t : texts) report_.bytes_in += t.size();
  report_.documents_in += n;

  // Stage 1: paragraph hashes in parallel, then marking in input order.
  std::vector<std::vector<uint32_t>> removed(n);
  std::vector<std::string> rebuilt(n);  // text after stage 1, only where paragraphs were removed
  if (opt_.paragraphs) {
    std::vector<std::vector<Hash128>> hashes(n);
    parallel_for(n, opt_.threads, [&](size_t i) {
      std::string norm;
      for (auto p : split_paragraphs(texts[i])) {
        normalize_text(p, norm);
        hashes[i].push_back(norm.empty() ? Hash128{} : hash128(norm));  // {0,0}: never removed
      }
    });
    for (size_t i = 0; i < n; ++i) {
      report_.paragraphs_seen += hashes[i].size();
      for (size_t p = 0; p < hashes[i].size(); ++p) {
        const Hash128& h = hashes[i][p];
        if (h == Hash128{}) continue;
        if (!paragraph_seen_.insert(h).second) removed[i].push_back(static_cast<uint32_t>(p));
      }
      if (!removed[i].empty()) {
        report_.paragraphs_removed += removed[i].size();
        if (removed[i].size() == hashes[i].size()) fate_[base + i] = Fate::kAllParagraphs;
        removed_paragraphs_[static_cast<uint32_t>(base + i)] = removed[i];
      }
    }
  }

  // Stages 2 and 3 inputs: exact hash and band keys of the text left by stage 1.
  const int bands = opt_.minhash.bands, k = hasher_.size();
  std::vector<Hash128> exact(n);
  std::vector<uint64_t> keys(opt_.near ? n * bands : 0);
  std::vector<uint8_t> has_sig(n, 0);
  std::vector<uint64_t> sigs(opt_.near && opt_.threshold > 0 ? n * k : 0);
  parallel_for(n, opt_.threads, [&](size_t i) {
    std::string_view text = texts[i];
    if (!removed[i].empty()) {
      rebuilt[i] = join_kept_paragraphs(text, removed[i]);
      text = rebuilt[i];
    }
    bytes_after_paragraphs_[base + i] = text.size();
    if (fate_[base + i] != Fate::kKept) return;
    thread_local std::string norm;
    thread_local std::vector<uint64_t> sig, scratch;
    normalize_text(text, norm);
    if (opt_.exact) exact[i] = hash128(norm);
    if (opt_.near && hasher_.signature(norm, sig, scratch)) {
      has_sig[i] = 1;
      hasher_.band_keys(sig, &keys[i * bands]);
      if (!sigs.empty()) std::copy(sig.begin(), sig.end(), sigs.begin() + i * k);
    }
  });

  for (size_t i = 0; i < n; ++i) {
    const auto d = static_cast<uint32_t>(base + i);
    if (fate_[d] != Fate::kKept) continue;
    if (opt_.exact) {
      auto [it, inserted] = exact_seen_.emplace(exact[i], d);
      if (!inserted) {
        fate_[d] = Fate::kExact;
        of_[d] = it->second;
        continue;
      }
    }
    if (!opt_.near) continue;
    if (!has_sig[i]) {
      ++report_.no_shingles;
      continue;
    }
    for (int b = 0; b < bands; ++b) buckets_.add({keys[i * bands + b], static_cast<uint32_t>(b), d});
    if (!sigs.empty()) {
      if (signature_slot_.size() < fate_.size()) signature_slot_.resize(fate_.size(), ~0u);
      signature_slot_[d] = static_cast<uint32_t>(signatures_.size() / k);
      signatures_.insert(signatures_.end(), sigs.begin() + i * k, sigs.begin() + (i + 1) * k);
    }
  }
}

uint32_t Deduper::find(uint32_t x) {
  while (parent_[x] != x) {
    parent_[x] = parent_[parent_[x]];
    x = parent_[x];
  }
  return x;
}

void Deduper::join(uint32_t x, uint32_t y) {
  x = find(x);
  y = find(y);
  if (x == y) return;
  if (x < y) parent_[y] = x;  // the root is the cluster's first document in input order
  else parent_[x] = y;
}

void Deduper::finish() {
  if (finished_) return;
  finished_ = true;
  const size_t n = fate_.size();
  const int k = hasher_.size();
  if (opt_.near) {
    parent_.resize(n);
    for (size_t i = 0; i < n; ++i) parent_[i] = static_cast<uint32_t>(i);
    signature_slot_.resize(n, ~0u);
    // Buckets in (band, key) order, members in input order.
    buckets_.for_each_bucket([&](const BandRecord* bucket, size_t m) {
      for (size_t j = 1; j < m; ++j) {
        const uint32_t dj = bucket[j].doc;
        if (opt_.threshold <= 0) {
          ++report_.near_candidate_pairs;
          join(bucket[0].doc, dj);
          continue;
        }
        // Verified: join dj to the first earlier member of the bucket (at most 64 tried) whose
        // signature agrees enough.
        const uint64_t* sj = &signatures_[static_cast<size_t>(signature_slot_[dj]) * k];
        for (size_t i = 0; i < j && i < 64; ++i) {
          ++report_.near_candidate_pairs;
          const uint64_t* si = &signatures_[static_cast<size_t>(signature_slot_[bucket[i].doc]) * k];
          if (estimated_jaccard(si, sj, k) >= opt_.threshold) {
            join(bucket[i].doc, dj);
            break;
          }
        }
      }
    });
    buckets_.release();
    std::vector<uint8_t> is_cluster_root(n, 0);
    for (size_t i = 0; i < n; ++i) {
      if (fate_[i] != Fate::kKept) continue;
      uint32_t r = find(static_cast<uint32_t>(i));
      if (r != i) {
        fate_[i] = Fate::kNear;
        of_[i] = r;
        if (!is_cluster_root[r]) {
          is_cluster_root[r] = 1;
          ++report_.near_clusters;
        }
      }
    }
    std::vector<uint32_t>().swap(parent_);
  }
  complete_report();
}

void Deduper::set_results(std::vector<Fate> fate, std::vector<uint32_t> of, std::vector<uint64_t> bytes,
                          ParagraphResults paragraphs) {
  if (finished_ || !fate_.empty()) fail("Deduper::set_results after add() or finish()");
  if (of.size() != fate.size() || bytes.size() != fate.size()) fail("Deduper::set_results: sizes differ");
  if (!opt_.paragraphs && (!paragraphs.removed.empty() || paragraphs.seen > 0))
    fail("Deduper::set_results: paragraph results without the paragraph stage");
  finished_ = true;
  fate_ = std::move(fate);
  of_ = std::move(of);
  const size_t n = fate_.size();
  for (auto t : bytes) report_.bytes_in += t;
  bytes_after_paragraphs_ = std::move(bytes);
  for (const auto& [d, after] : paragraphs.bytes_after) {
    if (d >= n) fail("Deduper::set_results: paragraph results for document ", d, " of ", n);
    bytes_after_paragraphs_[d] = after;
  }
  report_.paragraphs_seen = paragraphs.seen;
  for (const auto& [d, removed] : paragraphs.removed) report_.paragraphs_removed += removed.size();
  removed_paragraphs_ = std::move(paragraphs.removed);
  report_.documents_in = n;
  std::vector<uint8_t> is_cluster_root(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (of_[i] >= n || of_[i] > i) fail("Deduper::set_results: document ", i, " names ", of_[i], " as its original");
    if (fate_[i] == Fate::kNear && !is_cluster_root[of_[i]]) {
      is_cluster_root[of_[i]] = 1;
      ++report_.near_clusters;
    }
  }
  complete_report();
}

void Deduper::complete_report() {
  const size_t n = fate_.size();
  referenced_.assign(n, false);
  for (size_t i = 0; i < n; ++i)
    if (of_[i] != i) referenced_[of_[i]] = true;

  // Counts per stage: each stage sees the documents the previous one kept.
  DedupReport& r = report_;
  r.paragraphs.docs_in = r.documents_in;
  r.paragraphs.bytes_in = r.bytes_in;
  for (size_t i = 0; i < n; ++i) {
    const Fate f = fate_[i];
    const uint64_t b = bytes_after_paragraphs_[i];
    if (f != Fate::kAllParagraphs) {
      ++r.paragraphs.docs_out;
      r.paragraphs.bytes_out += b;
    }
    if (f != Fate::kKept) ++r.removed_by_reason[fate_reason(f)];
    if (f == Fate::kExact || f == Fate::kNear || f == Fate::kKept) {
      ++r.exact.docs_in;
      r.exact.bytes_in += b;
    }
    if (f == Fate::kNear || f == Fate::kKept) {
      ++r.exact.docs_out;
      r.exact.bytes_out += b;
    }
    if (f == Fate::kKept) {
      ++r.documents_kept;
      r.bytes_kept += b;
    }
  }
  r.near.docs_in = r.exact.docs_out;
  r.near.bytes_in = r.exact.bytes_out;
  r.near.docs_out = r.documents_kept;
  r.near.bytes_out = r.bytes_kept;
  exact_seen_ = {};
  paragraph_seen_ = {};
}

std::string Deduper::kept_text(size_t i, std::string_view original) const {
  auto it = removed_paragraphs_.find(static_cast<uint32_t>(i));
  if (it == removed_paragraphs_.end()) return std::string(original);
  return join_kept_paragraphs(original, it->second);
}

namespace {

nlohmann::json stage_json(const StageCounts& s, bool on) {
  return {{"enabled", on},
          {"documents_in", s.docs_in},
          {"documents_out", s.docs_out},
          {"documents_removed", s.docs_removed()},
          {"bytes_in", s.bytes_in},
          {"bytes_out", s.bytes_out},
          {"bytes_removed", s.bytes_removed()}};
}

std::string commas(uint64_t v) {
  std::string s = std::to_string(v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

}  // namespace

std::string DedupReport::to_json() const {
  nlohmann::json j;
  j["documents_in"] = documents_in;
  j["bytes_in"] = bytes_in;
  j["documents_kept"] = documents_kept;
  j["bytes_kept"] = bytes_kept;
  j["documents_removed"] = documents_in - documents_kept;
  j["bytes_removed"] = bytes_in - bytes_kept;
  nlohmann::json reasons = nlohmann::json::object();
  for (const auto& [k, v] : removed_by_reason) reasons[k] = v;
  j["documents_removed_by_reason"] = reasons;
  auto p = stage_json(paragraphs, paragraphs_on);
  p["paragraphs_seen"] = paragraphs_seen;
  p["paragraphs_removed"] = paragraphs_removed;
  p["reason"] = "all paragraphs duplicated";
  auto e = stage_json(exact, exact_on);
  e["reason"] = "exact duplicate";
  e["normalization"] = "ASCII lowercase, ASCII punctuation deleted, whitespace collapsed";
  e["hash"] = "128-bit (two XXH64 seeds)";
  auto nr = stage_json(near, near_on);
  nr["reason"] = "near duplicate";
  nr["ngram"] = minhash.ngram;
  nr["shingles"] = minhash.char_ngrams ? "characters" : "words";
  nr["bands"] = minhash.bands;
  nr["rows"] = minhash.rows;
  nr["seed"] = minhash.seed;
  nr["threshold"] = threshold;
  nr["clusters"] = near_clusters;
  nr["candidate_pairs"] = near_candidate_pairs;
  nr["documents_without_shingles"] = no_shingles;
  j["stages"] = {{"paragraphs", p}, {"exact", e}, {"near", nr}};
  nlohmann::json rd;
  rd["files"] = read.files;
  rd["lines"] = read.lines;
  rd["blank_lines"] = read.blank_lines;
  rd["skipped"] = read.skipped;
  nlohmann::json sk = nlohmann::json::object();
  for (const auto& [k, v] : read.skipped_by_reason) sk[k] = v;
  rd["skipped_by_reason"] = sk;
  j["read"] = rd;
  j["seconds"] = {{"pass1", seconds_pass1}, {"pass2", seconds_pass2}};
  return j.dump(2) + "\n";
}

std::string DedupReport::table() const {
  std::string out;
  char line[256];
  auto row = [&](const char* name, const StageCounts& s, bool on) {
    if (!on) {
      std::snprintf(line, sizeof line, "  %-28s %s\n", name, "(off)");
    } else {
      std::snprintf(line, sizeof line, "  %-28s %14s %14s %14s %16s %16s %16s\n", name, commas(s.docs_in).c_str(),
                    commas(s.docs_out).c_str(), commas(s.docs_removed()).c_str(), commas(s.bytes_in).c_str(),
                    commas(s.bytes_out).c_str(), commas(s.bytes_removed()).c_str());
    }
    out += line;
  };
  std::snprintf(line, sizeof line, "  %-28s %14s %14s %14s %16s %16s %16s\n", "stage", "docs in", "docs out",
                "docs removed", "bytes in", "bytes out", "bytes removed");
  out += line;
  row("paragraphs (exact)", paragraphs, paragraphs_on);
  row("exact documents", exact, exact_on);
  std::string near_name = "near (MinHash " + std::to_string(minhash.bands) + "x" + std::to_string(minhash.rows) + ")";
  row(near_name.c_str(), near, near_on);
  StageCounts total{documents_in, documents_kept, bytes_in, bytes_kept};
  row("total", total, true);
  if (paragraphs_on) out += "  paragraphs: " + commas(paragraphs_removed) + " of " + commas(paragraphs_seen) + " removed\n";
  if (near_on)
    out += "  near duplicates: " + commas(near_clusters) + " clusters, " + commas(near_candidate_pairs) +
           " candidate pairs, " + commas(no_shingles) + " documents without shingles\n";
  for (const auto& [k, v] : removed_by_reason) out += "  removed, " + k + ": " + commas(v) + "\n";
  if (read.skipped > 0) out += "  input lines skipped while reading (not documents): " + commas(read.skipped) + "\n";
  return out;
}

DedupReport run_dedup(const DedupOptions& opt, const DedupSink& sink) {
  using clock = std::chrono::steady_clock;
  Deduper dd(opt);
  auto t0 = clock::now();
  corpus::ReadReport read_report;
  {
    corpus::DocumentReader reader(opt.inputs, opt.on_error);
    Progress progress("dedup pass 1", reader.bytes_total_compressed(), "B");
    std::vector<std::string> texts;
    std::vector<std::string_view> views;
    corpus::Document doc;
    bool more = true;
    uint64_t done = 0;
    while (more) {
      texts.clear();
      while (texts.size() < opt.batch_documents && (more = reader.next(doc))) texts.push_back(std::move(doc.text));
      if (texts.empty()) break;
      views.assign(texts.begin(), texts.end());
      dd.add(views);
      const uint64_t now = reader.bytes_read_compressed();
      progress.add(now - std::min(now, done));
      done = std::max(done, now);
    }
    progress.finish();
    read_report = reader.report();
  }
  dd.finish();
  auto t1 = clock::now();
  const double seconds_pass2 = write_dedup_pass2(opt, dd, sink);
  DedupReport r = dd.report();
  r.read = read_report;
  r.seconds_pass1 = std::chrono::duration<double>(t1 - t0).count();
  r.seconds_pass2 = seconds_pass2;
  return r;
}

double write_dedup_pass2(const DedupOptions& opt, const Deduper& dd, const DedupSink& sink) {
  const auto t1 = std::chrono::steady_clock::now();
  {
    corpus::DocumentReader reader(opt.inputs, corpus::OnError::kSkip);
    Progress progress("dedup pass 2", dd.size(), "docs");
    std::unordered_map<uint32_t, std::string> ids;  // of kept documents that others duplicate
    corpus::Document doc;
    size_t i = 0;
    while (reader.next(doc)) {
      if (i >= dd.size()) fail("dedup: the inputs changed between the two passes (more documents on the second read)");
      const Fate f = dd.fate(i);
      if (dd.referenced(i)) ids[static_cast<uint32_t>(i)] = doc.id;
      if (f == Fate::kKept) {
        doc.text = dd.kept_text(i, doc.text);
        if (sink.kept) sink.kept(doc);
      } else if (sink.removed) {
        std::string of_id;
        if (f == Fate::kExact || f == Fate::kNear) {
          auto it = ids.find(dd.duplicate_of(i));
          if (it != ids.end()) of_id = it->second;
          if (of_id.empty()) of_id = "#" + std::to_string(dd.duplicate_of(i));  // a document without an id
        }
        sink.removed(doc, fate_reason(f), of_id);
      }
      ++i;
      progress.add(1);
    }
    progress.finish();
    if (i != dd.size()) fail("dedup: the inputs changed between the two passes (fewer documents on the second read)");
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
}

}  // namespace agpt::curate
