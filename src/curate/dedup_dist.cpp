#include "curate/dedup_dist.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <tuple>
#include <unordered_map>

#include "base/error.h"
#include "base/parallel.h"
#include "base/progress.h"
#include "corpus/reader.h"
#include "curate/dedup_spill.h"

namespace agpt::curate {
namespace {

// Records travel as raw bytes: every rank runs the same binary on hosts of the same byte order.
struct ExactRec {
  uint64_t lo, hi;
  uint64_t doc;
};
struct Pair {
  uint32_t doc, of;  // doc duplicates `of` (of < doc)
};
// What the paragraph stage did to one document: `lost` paragraphs (their indices follow), all of them
// when `all`, leaving bytes_after bytes of text.
struct ParaResult {
  uint32_t doc, lost, all, unused;
  uint64_t bytes_after;
};

// Reads records in order from one rank's message; a short message is an error, not a crash.
class MessageReader {
 public:
  explicit MessageReader(const std::string& msg) : msg_(msg) {}
  template <class T>
  void read(T* out, size_t n) {
    const size_t bytes = n * sizeof(T);
    if (msg_.size() - pos_ < bytes) fail("dedup: a rank sent a truncated result");
    std::memcpy(out, msg_.data() + pos_, bytes);
    pos_ += bytes;
  }
  bool done() const { return pos_ == msg_.size(); }

 private:
  const std::string& msg_;
  size_t pos_ = 0;
};

template <class T>
void append(std::string& out, const T* v, size_t n) {
  out.append(reinterpret_cast<const char*>(v), n * sizeof(T));
}

// Every rank's records of type T, concatenated in rank order.
template <class T>
std::vector<T> records(const std::vector<std::string>& from_each) {
  size_t bytes = 0;
  for (const auto& s : from_each) {
    if (s.size() % sizeof(T) != 0) fail("dedup: a rank sent a truncated record (", s.size(), " bytes)");
    bytes += s.size();
  }
  std::vector<T> out(bytes / sizeof(T));
  char* p = reinterpret_cast<char*>(out.data());
  for (const auto& s : from_each) std::memcpy(p, s.data(), s.size()), p += s.size();
  return out;
}

// Which rank hashes a document: every batch of batch_documents documents is cut into N contiguous slices,
// rank r taking [c*r/N, c*(r+1)/N) of a batch of c documents, so every rank gets a share of every batch
// (balanced however few batches there are) and each rank's documents are in input order.
struct Shares {
  uint64_t batch = 1, ranks = 1, total = 0;  // total: documents in the corpus
  // [begin, end) within a batch of `count` documents for rank r.
  static std::pair<size_t, size_t> slice(size_t count, int r, int ranks) {
    return {count * static_cast<size_t>(r) / static_cast<size_t>(ranks),
            count * static_cast<size_t>(r + 1) / static_cast<size_t>(ranks)};
  }
  size_t rank_of(uint64_t d) const {
    const uint64_t first = d / batch * batch, count = std::min(batch, total - first), q = d - first;
    return static_cast<size_t>(((q + 1) * ranks - 1) / count);  // the largest r with slice start <= q
  }
};

// This rank's documents (its slices of every batch), in input order, and what pass 1 computed for them.
struct LocalDocs {
  std::vector<uint32_t> doc;     // global document numbers, increasing
  std::vector<Hash128> exact;    // when exact dedup is on
  std::vector<uint64_t> keys;    // bands per document, when near dedup is on
  std::vector<uint64_t> sigs;    // the whole signature per document, only with --threshold > 0
  std::vector<uint8_t> has_sig;  // 0: no shingles
  std::vector<uint8_t> removed;  // set by the paragraph stage (all paragraphs) and the exact stage
  // With --paragraphs: the paragraphs this rank's documents lost (increasing indices) and their text
  // bytes after the stage; paragraph count per document (in `doc` order).
  std::unordered_map<uint32_t, std::vector<uint32_t>> lost_paragraphs;
  std::unordered_map<uint32_t, uint64_t> bytes_after;
  std::vector<uint32_t> paragraphs;

  size_t index_of(uint32_t d) const {
    auto it = std::lower_bound(doc.begin(), doc.end(), d);
    if (it == doc.end() || *it != d) fail("dedup: rank got a result for document ", d, " which it does not hold");
    return static_cast<size_t>(it - doc.begin());
  }
};

// Union-find over the documents named by `edges` (each joins doc and of); returns, for every such document
// that is not its cluster's first, the pair (document, first). The first is the smallest number, as in
// Deduper::join, so merging these pairs anywhere gives the same clusters.
std::vector<Pair> compress_clusters(const std::vector<Pair>& edges) {
  std::vector<uint32_t> ids;
  ids.reserve(edges.size() * 2);
  for (const auto& e : edges) ids.push_back(e.doc), ids.push_back(e.of);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  auto idx = [&](uint32_t d) {
    return static_cast<uint32_t>(std::lower_bound(ids.begin(), ids.end(), d) - ids.begin());
  };
  std::vector<uint32_t> parent(ids.size());
  for (uint32_t i = 0; i < parent.size(); ++i) parent[i] = i;
  auto find = [&](uint32_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  for (const auto& e : edges) {
    uint32_t a = find(idx(e.doc)), b = find(idx(e.of));
    if (a != b) parent[std::max(a, b)] = std::min(a, b);  // ids sorted: smaller index, smaller doc
  }
  std::vector<Pair> out;
  for (uint32_t i = 0; i < parent.size(); ++i)
    if (find(i) != i) out.push_back({ids[i], ids[find(i)]});
  return out;
}

// Reads every document (all ranks read the same inputs, which keeps the document numbers, ids and read
// report identical to one process) and calls fn(texts, first) with the texts of this rank's slice of each
// batch, the first being document number `first`. Rank 0 also records the size of every text in all_sizes
// when given. Returns the corpus's document count.
uint64_t read_my_slices(const DedupOptions& opt, dist::Communicator& comm, const char* label,
                        std::vector<uint64_t>* all_sizes, corpus::ReadReport* read_report,
                        const std::function<void(std::vector<std::string>&, uint32_t)>& fn) {
  corpus::DocumentReader reader(opt.inputs, opt.on_error);
  Progress progress(label, reader.bytes_total_compressed(), "B");
  std::vector<std::string> texts;
  corpus::Document doc;
  uint64_t next_doc = 0, done = 0;
  for (;;) {
    // The batch's texts are kept until its size is known (a last batch may be short).
    texts.clear();
    while (texts.size() < opt.batch_documents && reader.next(doc)) texts.push_back(std::move(doc.text));
    const size_t all = texts.size();
    if (all == 0) break;
    if (next_doc + all >= 0xFFFFFFFFull) fail("dedup: more than 4 billion documents");
    if (all_sizes != nullptr && comm.rank() == 0)
      for (const auto& t : texts) all_sizes->push_back(t.size());
    const auto [first, last] = Shares::slice(all, comm.rank(), comm.size());
    texts.erase(texts.begin() + static_cast<std::ptrdiff_t>(last), texts.end());
    texts.erase(texts.begin(), texts.begin() + static_cast<std::ptrdiff_t>(first));
    if (!texts.empty()) fn(texts, static_cast<uint32_t>(next_doc + first));
    next_doc += all;
    const uint64_t now = reader.bytes_read_compressed();
    progress.add(now - std::min(now, done));
    done = std::max(done, now);
  }
  progress.finish();
  if (read_report != nullptr) *read_report = reader.report();
  return next_doc;
}

// One paragraph's normal-form hash; the paragraph stage's order is (doc, para).
struct ParaRec {
  uint64_t lo, hi;
  uint32_t doc, para;
};

// The paragraph stage (--paragraphs), a pass of its own since the document hashes are taken of the text
// it leaves: (hash, doc, paragraph) to the rank owning the hash, where every occurrence but the first in
// (document, paragraph) order is removed, as Deduper::add does in input order; the removals go back to
// the documents' ranks. Fills local.doc, local.paragraphs and local.lost_paragraphs; returns the corpus's
// document count.
uint64_t paragraph_stage(const DedupOptions& opt, dist::Communicator& comm, LocalDocs& local) {
  const auto ranks = static_cast<size_t>(comm.size());
  std::vector<std::string> to(ranks);
  std::vector<std::vector<Hash128>> hashes;
  auto hash_paragraphs = [&](std::vector<std::string>& texts, uint32_t first) {
    hashes.assign(texts.size(), {});
    parallel_for(texts.size(), opt.threads, [&](size_t i) {
      thread_local std::string norm;
      for (auto p : split_paragraphs(texts[i])) {
        normalize_text(p, norm);
        hashes[i].push_back(norm.empty() ? Hash128{} : hash128(norm));
      }
    });
    for (size_t i = 0; i < texts.size(); ++i) {
      const auto d = static_cast<uint32_t>(first + i);
      local.doc.push_back(d);
      local.paragraphs.push_back(static_cast<uint32_t>(hashes[i].size()));
      for (size_t p = 0; p < hashes[i].size(); ++p) {
        const Hash128& h = hashes[i][p];
        if (h == Hash128{}) continue;  // empty normal form: never removed
        const ParaRec rec{h.lo, h.hi, d, static_cast<uint32_t>(p)};
        append(to[static_cast<size_t>(h.hi % ranks)], &rec, 1);
      }
    }
  };
  const uint64_t total = read_my_slices(opt, comm, "dedup pass 1a (paragraphs)", nullptr, nullptr, hash_paragraphs);
  Shares shares{opt.batch_documents, ranks, total};
  auto recs = records<ParaRec>(comm.all_to_all(to));
  std::vector<std::string>().swap(to);
  std::sort(recs.begin(), recs.end(), [](const ParaRec& a, const ParaRec& b) {
    return std::tie(a.lo, a.hi, a.doc, a.para) < std::tie(b.lo, b.hi, b.doc, b.para);
  });
  std::vector<std::string> back(ranks);
  for (size_t s = 0; s < recs.size();) {
    size_t e = s + 1;
    for (; e < recs.size() && recs[e].lo == recs[s].lo && recs[e].hi == recs[s].hi; ++e) {
      const Pair lost{recs[e].doc, recs[e].para};  // (document, paragraph index)
      append(back[shares.rank_of(lost.doc)], &lost, 1);
    }
    s = e;
  }
  std::vector<ParaRec>().swap(recs);
  for (const Pair& lost : records<Pair>(comm.all_to_all(back))) {
    local.index_of(lost.doc);  // checks that it is this rank's
    local.lost_paragraphs[lost.doc].push_back(lost.of);
  }
  for (auto& [d, lost] : local.lost_paragraphs) std::sort(lost.begin(), lost.end());
  return total;
}

// Pass 1 on this rank: hashes the documents of its slices (the text the paragraph stage left, with
// --paragraphs). Rank 0 also records the text bytes of every document (for the report). total: the corpus's
// document count.
void hash_my_slices(const DedupOptions& opt, dist::Communicator& comm, LocalDocs& local,
                    std::vector<uint64_t>& bytes_all, corpus::ReadReport& read_report, uint64_t& total) {
  const MinHasher hasher(opt.minhash);
  const int bands = opt.minhash.bands, k = hasher.size();
  const bool keep_sigs = opt.near && opt.threshold > 0;
  const bool paragraphs = opt.paragraphs;
  std::vector<std::string> rebuilt;
  std::vector<uint64_t> after;
  auto hash_batch = [&](std::vector<std::string>& texts, uint32_t first) {
    const size_t count = texts.size(), base = paragraphs ? local.index_of(first) : local.doc.size();
    if (!paragraphs)
      for (size_t i = 0; i < count; ++i) local.doc.push_back(static_cast<uint32_t>(first + i));
    if (opt.exact) local.exact.resize(base + count);
    if (opt.near) local.keys.resize((base + count) * bands);
    if (keep_sigs) local.sigs.resize((base + count) * k);
    local.has_sig.resize(base + count, 0);
    local.removed.resize(base + count, 0);
    rebuilt.assign(count, {});
    after.assign(count, 0);
    parallel_for(count, opt.threads, [&](size_t i) {
      const auto d = static_cast<uint32_t>(first + i);
      std::string_view text = texts[i];
      if (paragraphs) {
        auto it = local.lost_paragraphs.find(d);
        if (it != local.lost_paragraphs.end()) {
          rebuilt[i] = join_kept_paragraphs(text, it->second);
          text = rebuilt[i];
          after[i] = text.size();
          if (it->second.size() == local.paragraphs[base + i]) {
            local.removed[base + i] = 1;  // all paragraphs duplicated: in no later stage
            return;
          }
        }
      }
      thread_local std::string norm;
      thread_local std::vector<uint64_t> sig, scratch;
      normalize_text(text, norm);
      if (opt.exact) local.exact[base + i] = hash128(norm);
      if (opt.near && hasher.signature(norm, sig, scratch)) {
        local.has_sig[base + i] = 1;
        hasher.band_keys(sig, &local.keys[(base + i) * bands]);
        if (keep_sigs) std::copy(sig.begin(), sig.end(), local.sigs.begin() + (base + i) * k);
      }
    });
    if (paragraphs)
      for (size_t i = 0; i < count; ++i)
        if (local.lost_paragraphs.count(static_cast<uint32_t>(first + i)))
          local.bytes_after[static_cast<uint32_t>(first + i)] = after[i];
  };
  total = read_my_slices(opt, comm, "dedup pass 1", &bytes_all, &read_report, hash_batch);
  if (local.removed.size() != local.doc.size()) fail("dedup: the inputs changed between the paragraph pass and pass 1");
}

// The signatures of the documents that share a bucket with another, fetched from their ranks (--threshold >
// 0): the owner of a bucket verifies its pairs as Deduper::finish does.
struct SignatureTable {
  int k = 0;
  std::vector<uint32_t> doc;  // sorted
  std::vector<uint64_t> sig;  // k per doc
  const uint64_t* of(uint32_t d) const {
    auto it = std::lower_bound(doc.begin(), doc.end(), d);
    if (it == doc.end() || *it != d) fail("dedup: no signature for document ", d);
    return &sig[static_cast<size_t>(it - doc.begin()) * static_cast<size_t>(k)];
  }
};

SignatureTable fetch_signatures(BandKeyTable& table, const LocalDocs& local, const Shares& shares,
                                const DedupOptions& opt, dist::Communicator& comm) {
  const auto ranks = static_cast<size_t>(comm.size());
  SignatureTable t;
  t.k = opt.minhash.bands * opt.minhash.rows;
  table.for_each_bucket([&](const BandRecord* bucket, size_t m) {
    if (m > 1)
      for (size_t j = 0; j < m; ++j) t.doc.push_back(bucket[j].doc);
  });
  std::sort(t.doc.begin(), t.doc.end());
  t.doc.erase(std::unique(t.doc.begin(), t.doc.end()), t.doc.end());
  // Requests (document numbers, increasing) to the documents' ranks; replies in request order.
  std::vector<std::string> ask(ranks);
  for (uint32_t d : t.doc) append(ask[shares.rank_of(d)], &d, 1);
  const auto asked = comm.all_to_all(ask);
  std::vector<std::string> reply(ranks);
  for (size_t r = 0; r < ranks; ++r)
    for (uint32_t d : records<uint32_t>({asked[r]})) {
      const size_t i = local.index_of(d);
      if (!local.has_sig[i]) fail("dedup: rank asked for the signature of document ", d, ", which has none");
      append(reply[r], &local.sigs[i * static_cast<size_t>(t.k)], static_cast<size_t>(t.k));
    }
  const auto replies = comm.all_to_all(reply);
  // Requests went out by rank in increasing document order; merging the replies back by rank fills the table
  // in that order.
  t.sig.resize(t.doc.size() * static_cast<size_t>(t.k));
  std::vector<size_t> next(ranks, 0);
  for (size_t i = 0; i < t.doc.size(); ++i) {
    const size_t r = shares.rank_of(t.doc[i]);
    const size_t bytes = static_cast<size_t>(t.k) * sizeof(uint64_t);
    if (replies[r].size() < (next[r] + 1) * bytes) fail("dedup: a rank sent too few signatures");
    std::memcpy(&t.sig[i * static_cast<size_t>(t.k)], replies[r].data() + next[r] * bytes, bytes);
    ++next[r];
  }
  return t;
}

// Deduper::finish's verified joins, bucket by bucket: each member is joined to the first earlier member (of
// at most 64) whose signature agrees on at least `threshold` of its values.
void verify_buckets(BandKeyTable& table, const SignatureTable& sigs, double threshold, uint64_t& candidate_pairs,
                    std::vector<Pair>& edges) {
  table.for_each_bucket([&](const BandRecord* bucket, size_t m) {
    for (size_t j = 1; j < m; ++j) {
      const uint64_t* sj = sigs.of(bucket[j].doc);
      for (size_t i = 0; i < j && i < 64; ++i) {
        ++candidate_pairs;
        if (estimated_jaccard(sigs.of(bucket[i].doc), sj, sigs.k) >= threshold) {
          edges.push_back({bucket[j].doc, bucket[i].doc});
          break;
        }
      }
    }
  });
}

}  // namespace

DedupReport run_dedup_distributed(const DedupOptions& opt, const DedupSink& sink, dist::Communicator& comm) {
  const int n_ranks = comm.size(), me = comm.rank();
  if (n_ranks == 1) return run_dedup(opt, sink);
  if (opt.batch_documents == 0) fail("dedup: batch_documents must be at least 1");
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const auto ranks = static_cast<size_t>(n_ranks);

  std::vector<uint64_t> bytes_all;
  corpus::ReadReport read_report;
  Shares shares{opt.batch_documents, ranks, 0};
  LocalDocs local;
  const uint64_t docs_before = opt.paragraphs ? paragraph_stage(opt, comm, local) : 0;
  hash_my_slices(opt, comm, local, bytes_all, read_report, shares.total);
  if (opt.paragraphs && docs_before != shares.total)
    fail("dedup: the inputs changed between the paragraph pass and pass 1 (", docs_before, " then ", shares.total,
         " documents)");

  // Exact stage: (hash, doc) to the rank owning the hash; there the smallest doc of each hash is the
  // original. Results go back to the documents' ranks (the near stage skips them) and to rank 0.
  std::vector<Pair> exact_found;  // found by this rank as owner
  if (opt.exact) {
    std::vector<std::string> to(ranks);
    for (size_t i = 0; i < local.doc.size(); ++i) {
      if (local.removed[i]) continue;  // all paragraphs duplicated
      const ExactRec rec{local.exact[i].lo, local.exact[i].hi, local.doc[i]};
      append(to[static_cast<size_t>(rec.hi % ranks)], &rec, 1);
    }
    std::vector<Hash128>().swap(local.exact);
    auto recs = records<ExactRec>(comm.all_to_all(to));
    std::sort(recs.begin(), recs.end(), [](const ExactRec& a, const ExactRec& b) {
      return std::tie(a.lo, a.hi, a.doc) < std::tie(b.lo, b.hi, b.doc);
    });
    std::vector<std::string> back(ranks);
    for (size_t s = 0; s < recs.size();) {
      size_t e = s + 1;
      for (; e < recs.size() && recs[e].lo == recs[s].lo && recs[e].hi == recs[s].hi; ++e) {
        const Pair p{static_cast<uint32_t>(recs[e].doc), static_cast<uint32_t>(recs[s].doc)};
        exact_found.push_back(p);
        append(back[shares.rank_of(p.doc)], &p, 1);
      }
      s = e;
    }
    for (const Pair& p : records<Pair>(comm.all_to_all(back))) local.removed[local.index_of(p.doc)] = 1;
  }

  // Near stage: (band, key, doc) of every document still kept to the rank owning the key; there each bucket
  // joins its members to its first (datatrove's rule, as Deduper::finish with threshold 0).
  uint64_t candidate_pairs = 0, no_shingles = 0;
  std::vector<Pair> near_found;
  if (opt.near) {
    const int bands = opt.minhash.bands;
    std::vector<std::string> to(ranks);
    for (size_t i = 0; i < local.doc.size(); ++i) {
      if (local.removed[i]) continue;
      if (!local.has_sig[i]) {
        ++no_shingles;
        continue;
      }
      for (int b = 0; b < bands; ++b) {
        const BandRecord rec{local.keys[i * bands + b], static_cast<uint32_t>(b), local.doc[i]};
        append(to[static_cast<size_t>(mix64(rec.key ^ static_cast<uint64_t>(b)) % ranks)], &rec, 1);
      }
    }
    std::vector<uint64_t>().swap(local.keys);
    auto received = comm.all_to_all(to);
    std::vector<std::string>().swap(to);
    // The owned keys go into the table (spilling sorted runs beyond --memory-mb), one sender's
    // payload at a time, each freed once copied.
    BandKeyTable table(opt.memory_bytes, opt.tmp_dir);
    for (auto& payload : received) {
      if (payload.size() % sizeof(BandRecord) != 0) fail("dedup: a rank sent a truncated record");
      for (size_t off = 0; off < payload.size(); off += sizeof(BandRecord)) {
        BandRecord rec;
        std::memcpy(&rec, payload.data() + off, sizeof rec);
        table.add(rec);
      }
      std::string().swap(payload);
    }
    std::vector<Pair> edges;
    if (opt.threshold <= 0) {
      table.for_each_bucket([&](const BandRecord* bucket, size_t m) {
        for (size_t j = 1; j < m; ++j) {
          ++candidate_pairs;
          edges.push_back({bucket[j].doc, bucket[0].doc});
        }
      });
    } else {
      const SignatureTable sigs = fetch_signatures(table, local, shares, opt, comm);
      std::vector<uint64_t>().swap(local.sigs);
      verify_buckets(table, sigs, opt.threshold, candidate_pairs, edges);
    }
    table.release();
    near_found = compress_clusters(edges);
  }

  // Rank 0 gathers the counts and pairs, and merges the clusters.
  // Message: header, exact pairs, near pairs, then per document that lost paragraphs a ParaResult and the
  // lost paragraphs' indices.
  std::vector<std::string> to_root(ranks);
  uint64_t paragraphs_seen = 0;
  for (uint32_t c : local.paragraphs) paragraphs_seen += c;
  const uint64_t head[6] = {candidate_pairs,   no_shingles,     exact_found.size(),
                            near_found.size(), paragraphs_seen, local.lost_paragraphs.size()};
  append(to_root[0], head, 6);
  append(to_root[0], exact_found.data(), exact_found.size());
  append(to_root[0], near_found.data(), near_found.size());
  for (const auto& [d, lost] : local.lost_paragraphs) {
    const ParaResult pr{d, static_cast<uint32_t>(lost.size()),
                        static_cast<uint32_t>(lost.size() == local.paragraphs[local.index_of(d)]), 0,
                        local.bytes_after.at(d)};
    append(to_root[0], &pr, 1);
    append(to_root[0], lost.data(), lost.size());
  }
  auto from = comm.all_to_all(to_root);
  if (me != 0) {
    DedupReport r;  // the job's report is rank 0's
    r.read = read_report;
    return r;
  }
  const size_t n = bytes_all.size();
  std::vector<Fate> fate(n, Fate::kKept);
  std::vector<uint32_t> of(n);
  for (size_t i = 0; i < n; ++i) of[i] = static_cast<uint32_t>(i);
  std::vector<uint32_t> parent(of);
  auto find = [&](uint32_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  uint64_t total_pairs = 0, total_no_shingles = 0;
  ParagraphResults paras;
  for (const std::string& msg : from) {
    MessageReader in(msg);
    uint64_t h[6];
    in.read(h, 6);
    total_pairs += h[0];
    total_no_shingles += h[1];
    paras.seen += h[4];
    for (uint64_t k = 0; k < h[2] + h[3]; ++k) {
      Pair p;
      in.read(&p, 1);
      if (p.doc >= n || p.of >= p.doc) fail("dedup: a rank sent an invalid pair (", p.doc, ", ", p.of, ")");
      if (k < h[2]) {
        fate[p.doc] = Fate::kExact;
        of[p.doc] = p.of;
      } else {
        uint32_t a = find(p.doc), b = find(p.of);
        if (a != b) parent[std::max(a, b)] = std::min(a, b);  // the root stays the first document
      }
    }
    for (uint64_t k = 0; k < h[5]; ++k) {
      ParaResult pr;
      in.read(&pr, 1);
      if (pr.doc >= n || pr.lost == 0) fail("dedup: a rank sent invalid paragraph results");
      std::vector<uint32_t> lost(pr.lost);
      in.read(lost.data(), lost.size());
      if (pr.all) fate[pr.doc] = Fate::kAllParagraphs;  // left out of the later stages by its rank
      paras.bytes_after[pr.doc] = pr.bytes_after;
      paras.removed[pr.doc] = std::move(lost);
    }
    if (!in.done()) fail("dedup: a rank sent more than its results");
  }
  for (size_t i = 0; i < n; ++i) {
    const uint32_t r = find(static_cast<uint32_t>(i));
    if (r == i) continue;
    if (fate[i] != Fate::kKept) fail("dedup: document ", i, " is both an exact and a near duplicate");
    fate[i] = Fate::kNear;
    of[i] = r;
  }
  std::vector<uint32_t>().swap(parent);
  Deduper dd(opt);
  dd.set_results(std::move(fate), std::move(of), std::move(bytes_all), std::move(paras));
  const auto t1 = clock::now();
  const double seconds_pass2 = write_dedup_pass2(opt, dd, sink);
  DedupReport r = dd.report();
  r.near_candidate_pairs = total_pairs;
  r.no_shingles = total_no_shingles;
  r.read = read_report;
  r.seconds_pass1 = std::chrono::duration<double>(t1 - t0).count();
  r.seconds_pass2 = seconds_pass2;
  return r;
}

}  // namespace agpt::curate
