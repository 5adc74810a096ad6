#include "dataset/mixture.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "base/parallel.h"
#include "dataset/data_list.h"
#include "dataset/permutation.h"

namespace agpt::dataset {
namespace {

constexpr const char* kFormat = "agpt-mixture";
constexpr int kVersion = 1;

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t parse_hex64(const std::string& s) { return std::stoull(s, nullptr, 16); }

}  // namespace

const char* split_name(Split s) {
  switch (s) {
    case Split::kTrain: return "train";
    case Split::kValid: return "valid";
    case Split::kTest: return "test";
  }
  return "?";
}

std::array<double, kNumSplits> parse_split(const std::string& text) {
  std::array<double, kNumSplits> out{0, 0, 0};
  std::regex number("[0-9]*\\.?[0-9]+(?:[eE][-+]?[0-9]+)?");
  int n = 0;
  double total = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), number); it != std::sregex_iterator(); ++it) {
    if (n == kNumSplits) fail("split `", text, "`: at most three parts (train, valid, test)");
    out[n] = std::stod(it->str());
    total += out[n++];
  }
  if (n == 0 || !(total > 0)) fail("split `", text, "`: expected parts like 98,1,1 with a positive sum");
  for (double& x : out) x /= total;
  return out;
}

uint64_t Mixture::source_key(uint32_t source, Split split) const {
  // The content fingerprint, not the path: moving the files does not change the stream.
  return mix64(mix64(options_.seed) ^ mix64(sources_[source].fingerprint) ^ (uint64_t(split) + 1) * 0x9e37ULL);
}

Mixture Mixture::plan(const MixtureOptions& options, const StreamState* resume) {
  if (options.seq_len == 0) fail("--seq-len must be at least 1");
  Mixture m;
  m.options_ = options;
  auto entries = parse_data_list(options.list_path);
  // Megatron's document split: bookends round(cumulative fraction * documents), half to even.
  std::array<double, kNumSplits + 1> bookend{0, 0, 0, 0};
  for (int s = 0; s < kNumSplits; ++s) bookend[s + 1] = bookend[s] + options.split[s];
  // Open every index at once: a cold start is bound by random disk reads, which overlap well.
  // Errors are collected per file and the first in list order is reported, whatever the timing.
  std::vector<std::shared_ptr<IndexHeader>> opened(entries.size());
  std::vector<uint64_t> fingerprints(entries.size());
  std::vector<std::string> errors(entries.size());
  parallel_for(entries.size(), 32, [&](size_t i) {
    try {
      opened[i] = std::make_shared<IndexHeader>(entries[i].prefix);
      fingerprints[i] = opened[i]->fingerprint();
    } catch (const Error& err) {
      errors[i] = err.what();
    }
  });
  for (size_t i = 0; i < entries.size(); ++i)
    if (!errors[i].empty()) fail(options.list_path, ":", entries[i].line, ": ", errors[i]);
  std::optional<TokenDType> dtype;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    SourcePlan src;
    src.prefix = e.prefix;
    src.corpus = e.corpus;
    src.weight = e.weight;
    std::shared_ptr<IndexHeader> idx = opened[i];
    src.documents = idx->sequences();
    src.tokens = idx->bin_tokens();
    src.dtype = idx->dtype();
    src.fingerprint = fingerprints[i];
    if (!dtype) dtype = src.dtype;
    if (*dtype != src.dtype)
      fail(options.list_path, ":", e.line, ": ", e.prefix, " stores ", dtype_name(src.dtype), " tokens but ",
           m.sources_.front().prefix, " stores ", dtype_name(*dtype),
           " tokens: the files were made with tokenizers of different vocabulary sizes");
    for (int s = 0; s < kNumSplits; ++s) {
      auto& sp = src.split[s];
      double d = static_cast<double>(src.documents);
      sp.doc_begin = static_cast<uint64_t>(std::nearbyint(bookend[s] * d));
      sp.doc_end = s == kNumSplits - 1 ? src.documents : static_cast<uint64_t>(std::nearbyint(bookend[s + 1] * d));
      sp.doc_end = std::min<uint64_t>(std::max(sp.doc_end, sp.doc_begin), src.documents);
      sp.token_begin = idx->token_offset(sp.doc_begin);
      sp.token_end = idx->token_offset(sp.doc_end);
      if (sp.token_end < sp.token_begin) fail(e.prefix, ".idx: pointers decrease between documents ", sp.doc_begin, " and ", sp.doc_end);
      uint64_t n = sp.token_end - sp.token_begin;
      sp.samples_per_epoch = n > options.seq_len ? (n - 1) / options.seq_len : 0;
    }
    m.sources_.push_back(std::move(src));
    m.indices_.push_back(std::move(idx));
  }
  for (int s = 0; s < kNumSplits; ++s) {
    if (options.samples[s] == 0) continue;
    for (auto& src : m.sources_) {
      auto& sp = src.split[s];
      sp.active = sp.samples_per_epoch > 0;
      if (!sp.active)
        m.warnings_.push_back(cat(src.prefix, ": ", sp.token_end - sp.token_begin, " tokens in the ", split_name(Split(s)),
                                  " split, fewer than one sample of ", options.seq_len + 1,
                                  " tokens; left out of that split (its weight goes to the others)"));
    }
  }
  if (resume) {
    m.start_[0] = resume->consumed;
    if (resume->consumed > options.samples[0])
      fail("the resumed stream already consumed ", resume->consumed, " samples, more than the ", options.samples[0],
           " training samples asked for; raise --samples");
    for (auto& src : m.sources_) {
      auto it = resume->per_source.find(src.prefix);
      if (it != resume->per_source.end()) src.split[0].base = it->second;
    }
    for (auto& [prefix, count] : resume->per_source) {
      bool kept = false;
      for (auto& src : m.sources_) kept |= src.prefix == prefix;
      if (!kept) m.warnings_.push_back(cat(prefix, ": in the resumed stream (", count, " samples consumed) but not in the new list; dropped"));
    }
  }
  m.build_blends();
  for (int s = 0; s < kNumSplits; ++s) {
    if (options.samples[s] == 0 || !m.blends_[s]) continue;
    uint64_t n = options.samples[s] - m.start_[s];
    auto counts = m.blends_[s]->counts(n);
    auto bounds = m.blends_[s]->prefix_bounds();
    for (size_t leaf = 0; leaf < counts.size(); ++leaf) {
      auto& src = m.sources_[m.active_[s][leaf]];
      src.split[s].samples = counts[leaf];
      src.split[s].prefix_bound = bounds[leaf];
      if (counts[leaf] == 0)
        m.warnings_.push_back(cat(src.prefix, ": its share of ", n, " ", split_name(Split(s)),
                                  " samples rounds to zero; it serves none"));
    }
  }
  return m;
}

void Mixture::build_blends() {
  for (int s = 0; s < kNumSplits; ++s) {
    active_[s].clear();
    blends_[s].reset();
    if (options_.samples[s] == 0) continue;
    std::vector<double> weights;
    std::map<std::string, std::vector<uint32_t>> by_corpus;
    std::vector<std::string> corpus_order;
    for (uint32_t i = 0; i < sources_.size(); ++i) {
      if (!sources_[i].split[s].active) continue;
      const std::string& c = sources_[i].corpus;
      if (!by_corpus.count(c)) corpus_order.push_back(c);
      by_corpus[c].push_back(static_cast<uint32_t>(weights.size()));
      weights.push_back(sources_[i].weight);
      active_[s].push_back(i);
    }
    if (weights.empty())
      fail("no source has enough tokens for one ", split_name(Split(s)), " sample of ", options_.seq_len + 1,
           " tokens; lower --seq-len or the ", split_name(Split(s)), " share of --split");
    std::vector<std::vector<uint32_t>> groups;
    for (auto& c : corpus_order) groups.push_back(by_corpus[c]);
    blends_[s] = std::make_shared<BlendTree>(weights, groups);
  }
}

Permutation Mixture::epoch_order(uint32_t source, Split split, uint64_t epoch, uint64_t& offset) const {
  // Each epoch: its own order of the windows and its own packing offset within the slack tokens
  // (the < seq_len tokens left over by whole windows), so epochs never replay identical samples.
  const SourceSplitPlan& sp = sources_[source].split[static_cast<int>(split)];
  uint64_t key = mix64(source_key(source, split) ^ mix64(epoch + 1));
  uint64_t slack = (sp.token_end - sp.token_begin - 1) - sp.samples_per_epoch * options_.seq_len;
  offset = slack ? mix64(key ^ 0x5bd1e995ULL) % (slack + 1) : 0;
  return Permutation(sp.samples_per_epoch, key);
}

SampleRef Mixture::locate(uint32_t source, Split split, uint64_t source_sample, const Permutation& order,
                          uint64_t offset) const {
  const SourceSplitPlan& sp = sources_[source].split[static_cast<int>(split)];
  SampleRef ref;
  ref.source = source;
  ref.source_sample = source_sample;
  ref.epoch = source_sample / sp.samples_per_epoch;
  ref.start_token = sp.token_begin + offset + order(source_sample % sp.samples_per_epoch) * options_.seq_len;
  return ref;
}

SampleRef Mixture::sample(Split split, uint64_t index) const {
  int s = static_cast<int>(split);
  if (!blends_[s]) fail("the mixture has no ", split_name(split), " samples (ask for them with --", split_name(split), "-samples)");
  if (index < start_[s])
    fail("sample ", index, " comes before this plan's start (", start_[s], "): it was served by the mixture before the change");
  auto pick = blends_[s]->pick(index - start_[s]);
  uint32_t source = active_[s][pick.source];
  const SourceSplitPlan& sp = sources_[source].split[s];
  uint64_t source_sample = sp.base + pick.local, offset = 0;
  Permutation order = epoch_order(source, split, source_sample / sp.samples_per_epoch, offset);
  return locate(source, split, source_sample, order, offset);
}

Mixture::Cursor::Cursor(const Mixture& mixture, Split split, uint64_t index)
    : mixture_(&mixture), split_(split), index_(index),
      blend_(mixture.blends_[static_cast<int>(split)]
                 ? *mixture.blends_[static_cast<int>(split)]
                 : (fail("the mixture has no ", split_name(split), " samples"), *mixture.blends_[0]),
             index >= mixture.start_[static_cast<int>(split)]
                 ? index - mixture.start_[static_cast<int>(split)]
                 : (fail("sample ", index, " comes before this plan's start"), 0)),
      cache_(mixture.active_[static_cast<int>(split)].size()) {
  const int s = static_cast<int>(split);
  for (size_t leaf = 0; leaf < cache_.size(); ++leaf) {
    const uint32_t source = mixture.active_[s][leaf];
    const SourceSplitPlan& sp = mixture.sources_[source].split[s];
    cache_[leaf].source = source;
    cache_[leaf].per_epoch = sp.samples_per_epoch;
    cache_[leaf].token_begin = sp.token_begin;
    cache_[leaf].base = sp.base;
  }
}

void Mixture::Cursor::resolve(size_t k) {
  const Pending& p = pending_[k];
  const SourceState& st = cache_[p.leaf];
  SampleRef& ref = buf_[k];
  ref.source = st.source;
  ref.source_sample = p.source_sample;
  ref.epoch = st.epoch;
  ref.start_token = st.token_begin + st.offset + st.order(p.within) * mixture_->options_.seq_len;
  resolved_[k] = true;
}

void Mixture::Cursor::fill() {
  resolved_.fill(false);
  for (size_t k = 0; k < kBatch; ++k) {
    auto pick = blend_.next();
    SourceState& st = cache_[pick.source];
    const uint64_t source_sample = st.base + pick.local;
    if (!st.started) {  // first visit: one division, then the position advances by counting
      st.started = true;
      st.epoch = source_sample / st.per_epoch;
      st.within = source_sample % st.per_epoch;
      st.order = mixture_->epoch_order(st.source, split_, st.epoch, st.offset);
    } else if (++st.within == st.per_epoch) {
      // A new epoch replaces this source's order: finish its earlier samples of the batch first.
      for (size_t j = 0; j < k; ++j)
        if (!resolved_[j] && pending_[j].leaf == pick.source) resolve(j);
      st.within = 0;
      st.order = mixture_->epoch_order(st.source, split_, ++st.epoch, st.offset);
    }
    pending_[k] = {pick.source, source_sample, st.within};
  }
  for (size_t k = 0; k < kBatch; ++k)
    if (!resolved_[k]) resolve(k);
  pos_ = 0;
}

SampleRef Mixture::Cursor::next() {
  if (pos_ == kBatch) fill();
  ++index_;
  return buf_[pos_++];
}

void Mixture::read(const SampleRef& ref, uint32_t* out) const {
  indices_.at(ref.source)->read_tokens(ref.start_token, options_.seq_len + 1, out);
}

StreamState Mixture::state_at(Split split, uint64_t consumed) const {
  int s = static_cast<int>(split);
  StreamState st;
  st.consumed = consumed;
  for (const auto& src : sources_) st.per_source[src.prefix] = src.split[s].base;
  if (blends_[s] && consumed > start_[s]) {
    auto counts = blends_[s]->counts(consumed - start_[s]);
    for (size_t leaf = 0; leaf < counts.size(); ++leaf) st.per_source[sources_[active_[s][leaf]].prefix] += counts[leaf];
  }
  return st;
}

std::string Mixture::to_json() const {
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["list"] = options_.list_path;
  j["seq_len"] = options_.seq_len;
  j["seed"] = options_.seed;
  j["split"] = options_.split;
  for (int s = 0; s < kNumSplits; ++s) {
    j["samples"][split_name(Split(s))] = options_.samples[s];
    j["start_index"][split_name(Split(s))] = start_[s];
  }
  j["order"] = "agpt";
  std::map<std::string, std::pair<double, uint64_t>> corpora;
  for (const auto& src : sources_) {
    nlohmann::ordered_json o;
    o["prefix"] = src.prefix;
    o["corpus"] = src.corpus;
    o["weight"] = src.weight;
    o["documents"] = src.documents;
    o["tokens"] = src.tokens;
    o["dtype"] = dtype_name(src.dtype);
    o["fingerprint"] = hex64(src.fingerprint);
    for (int s = 0; s < kNumSplits; ++s) {
      const auto& sp = src.split[s];
      nlohmann::ordered_json p;
      p["documents"] = {sp.doc_begin, sp.doc_end};
      p["tokens"] = {sp.token_begin, sp.token_end};
      p["samples_per_epoch"] = sp.samples_per_epoch;
      p["samples"] = sp.samples;
      p["base"] = sp.base;
      p["epochs"] = sp.epochs();
      p["prefix_bound"] = sp.prefix_bound;
      p["active"] = sp.active;
      o["splits"][split_name(Split(s))] = p;
    }
    j["sources"].push_back(o);
  }
  j["warnings"] = warnings_;
  return j.dump(1) + "\n";
}

void Mixture::save(const std::string& dir) const {
  std::filesystem::create_directories(dir);
  write_file_atomic((std::filesystem::path(dir) / "mixture.json").string(), to_json());
}

Mixture Mixture::load(const std::string& dir) {
  std::string path = (std::filesystem::path(dir) / "mixture.json").string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
    if (j.at("format") != kFormat) fail("not an agpt mixture (format ", j.at("format").dump(), ")");
    if (j.at("version") != kVersion) fail("mixture version ", j.at("version").dump(), " is not supported");
    if (j.value("order", "agpt") != "agpt")
      fail("this plan uses the ", j.value("order", "?"), " order: load it with MegatronOrder::load");
    Mixture m;
    m.options_.list_path = j.at("list").get<std::string>();
    m.options_.seq_len = j.at("seq_len").get<uint64_t>();
    m.options_.seed = j.at("seed").get<uint64_t>();
    m.options_.split = j.at("split").get<std::array<double, kNumSplits>>();
    for (int s = 0; s < kNumSplits; ++s) {
      m.options_.samples[s] = j.at("samples").at(split_name(Split(s))).get<uint64_t>();
      m.start_[s] = j.at("start_index").at(split_name(Split(s))).get<uint64_t>();
    }
    // Open all indices concurrently (cold starts are bound by random reads), then check each.
    const auto& listed = j.at("sources");
    std::vector<std::shared_ptr<IndexHeader>> opened(listed.size());
    std::vector<std::string> errors(listed.size());
    parallel_for(listed.size(), 32, [&](size_t i) {
      try {
        opened[i] = std::make_shared<IndexHeader>(listed[i].at("prefix").get<std::string>());
      } catch (const std::exception& err) {
        errors[i] = err.what();
      }
    });
    for (const auto& e : errors)
      if (!e.empty()) fail(e);
    size_t position = 0;
    for (const auto& o : listed) {
      SourcePlan src;
      src.prefix = o.at("prefix").get<std::string>();
      src.corpus = o.at("corpus").get<std::string>();
      src.weight = o.at("weight").get<double>();
      src.documents = o.at("documents").get<uint64_t>();
      src.tokens = o.at("tokens").get<uint64_t>();
      src.fingerprint = parse_hex64(o.at("fingerprint").get<std::string>());
      auto idx = opened[position++];
      src.dtype = idx->dtype();
      if (idx->fingerprint() != src.fingerprint || idx->bin_tokens() != src.tokens)
        fail(src.prefix, " changed since the mixture was planned (fingerprint ", hex64(idx->fingerprint()), ", planned ",
             hex64(src.fingerprint), "); re-run `agpt data mix`");
      for (int s = 0; s < kNumSplits; ++s) {
        const auto& p = o.at("splits").at(split_name(Split(s)));
        auto& sp = src.split[s];
        sp.doc_begin = p.at("documents")[0].get<uint64_t>();
        sp.doc_end = p.at("documents")[1].get<uint64_t>();
        sp.token_begin = p.at("tokens")[0].get<uint64_t>();
        sp.token_end = p.at("tokens")[1].get<uint64_t>();
        sp.samples_per_epoch = p.at("samples_per_epoch").get<uint64_t>();
        sp.samples = p.at("samples").get<uint64_t>();
        sp.base = p.at("base").get<uint64_t>();
        sp.prefix_bound = p.at("prefix_bound").get<double>();
        sp.active = p.at("active").get<bool>();
        if (sp.token_end > idx->bin_tokens() || sp.token_begin > sp.token_end ||
            (sp.active && (sp.samples_per_epoch == 0 ||
                           sp.samples_per_epoch > (sp.token_end - sp.token_begin - 1) / m.options_.seq_len)))
          fail(src.prefix, ": the ", split_name(Split(s)), " plan does not fit the file; re-run `agpt data mix`");
      }
      m.sources_.push_back(std::move(src));
      m.indices_.push_back(std::move(idx));
    }
    m.warnings_ = j.value("warnings", std::vector<std::string>{});
    m.build_blends();
    return m;
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": malformed mixture plan (", e.what(), "); re-run `agpt data mix`");
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
}

std::string Mixture::table() const {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-14s %-40s %8s %14s %14s %12s %8s %7s\n", "corpus", "file", "weight", "documents",
                "tokens", "samples", "epochs", "bound");
  out += line;
  std::map<std::string, std::array<double, 3>> corpora;  // weight, tokens, samples
  double total_weight = 0;
  for (const auto& src : sources_) total_weight += src.weight;
  for (const auto& src : sources_) {
    const auto& sp = src.split[0];
    std::string name = std::filesystem::path(src.prefix).filename().string();
    if (name.size() > 40) name = "…" + name.substr(name.size() - 38);
    std::snprintf(line, sizeof line, "%-14s %-40s %8.4f %14llu %14llu %12llu %8.3f %7.2f\n", src.corpus.c_str(),
                  name.c_str(), src.weight / total_weight, (unsigned long long)src.documents,
                  (unsigned long long)src.tokens, (unsigned long long)sp.samples, sp.epochs(), sp.prefix_bound);
    out += line;
    auto& c = corpora[src.corpus];
    c[0] += src.weight / total_weight;
    c[1] += static_cast<double>(src.tokens);
    c[2] += static_cast<double>(sp.samples);
  }
  out += "\ncorpus totals (train):\n";
  for (auto& [name, c] : corpora) {
    std::snprintf(line, sizeof line, "  %-20s weight %.4f  tokens %.4g  samples %.0f\n", name.c_str(), c[0], c[1], c[2]);
    out += line;
  }
  for (int s = 0; s < kNumSplits; ++s)
    if (options_.samples[s]) {
      std::snprintf(line, sizeof line, "%s: %llu samples of %llu tokens (from index %llu)\n", split_name(Split(s)),
                    (unsigned long long)options_.samples[s], (unsigned long long)(options_.seq_len + 1),
                    (unsigned long long)start_[s]);
      out += line;
    }
  for (const auto& w : warnings_) out += "warning: " + w + "\n";
  return out;
}

}  // namespace agpt::dataset
