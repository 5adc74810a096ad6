// Tests of curate/: hashes, normalisation, shingles, MinHash/LSH detection against exact Jaccard,
// the dedup engine's accounting and determinism, and run_dedup over files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <tuple>
#include <string>
#include <vector>

#include "base/error.h"
#include "curate/dedup.h"
#include "curate/dedup_dist.h"
#include "curate/hash.h"
#include "curate/minhash.h"

namespace fs = std::filesystem;
using namespace agpt::curate;

namespace {

// A random text of n words drawn from a large vocabulary (so shingles rarely repeat by chance).
std::vector<std::string> random_words(std::mt19937_64& rng, size_t n) {
  std::vector<std::string> w(n);
  for (auto& s : w) s = "w" + std::to_string(rng() % 1000000);
  return w;
}
std::string join(const std::vector<std::string>& w) {
  std::string s;
  for (const auto& x : w) {
    if (!s.empty()) s += ' ';
    s += x;
  }
  return s;
}
double exact_jaccard(const std::string& a, const std::string& b, const MinHashOptions& o) {
  std::vector<uint64_t> x, y;
  shingle_hashes(normalize_text(a), o, x);
  shingle_hashes(normalize_text(b), o, y);
  std::set<uint64_t> sx(x.begin(), x.end()), sy(y.begin(), y.end());
  size_t inter = 0;
  for (auto v : sx) inter += sy.count(v);
  return static_cast<double>(inter) / static_cast<double>(sx.size() + sy.size() - inter);
}
// A copy of words with about fraction f of them replaced by fresh words.
std::vector<std::string> mutate(std::mt19937_64& rng, std::vector<std::string> w, double f) {
  std::uniform_real_distribution<double> u(0, 1);
  for (auto& s : w)
    if (u(rng) < f) s = "m" + std::to_string(rng() % 1000000);
  return w;
}

std::vector<Fate> fates(const std::vector<std::string>& texts, DedupOptions opt, size_t batch = 7) {
  Deduper d(opt);
  for (size_t i = 0; i < texts.size(); i += batch) {
    std::vector<std::string_view> v;
    for (size_t j = i; j < std::min(texts.size(), i + batch); ++j) v.push_back(texts[j]);
    d.add(v);
  }
  d.finish();
  std::vector<Fate> f;
  for (size_t i = 0; i < d.size(); ++i) f.push_back(d.fate(i));
  return f;
}

}  // namespace

TEST(CurateHash, Xxh64KnownValues) {
  // Reference values of XXH64 (seed 0) published with xxHash.
  EXPECT_EQ(xxh64("", 0), 0xEF46DB3751D8E999ull);
  EXPECT_EQ(xxh64("a", 0), 0xD24EC4F1A98C6E5Bull);
  EXPECT_EQ(xxh64("abc", 0), 0x44BC2CF5AD770999ull);
  // Longer inputs take the 32-byte stripe path: at least stable and seed-dependent.
  std::string long_text(1000, 'x');
  EXPECT_EQ(xxh64(long_text, 7), xxh64(long_text, 7));
  EXPECT_NE(xxh64(long_text, 7), xxh64(long_text, 8));
  EXPECT_NE(xxh64(long_text), xxh64(long_text.substr(1)));
}

TEST(CurateNormalize, CaseWhitespacePunctuation) {
  EXPECT_EQ(normalize_text("  Hello,   WORLD!\n\tIt's  fine. "), "hello world its fine");
  EXPECT_EQ(normalize_text("Ünïcode stays"), "Ünïcode stays");
  EXPECT_EQ(normalize_text("...!!!"), "");
}

TEST(CurateShingles, WordAndCharacterNgrams) {
  MinHashOptions o;
  std::vector<uint64_t> s;
  shingle_hashes("a b c d e f g", o, s);
  EXPECT_EQ(s.size(), 3u);
  shingle_hashes("a b", o, s);
  EXPECT_EQ(s.size(), 1u);
  shingle_hashes("", o, s);
  EXPECT_TRUE(s.empty());
  o.char_ngrams = true;
  o.ngram = 3;
  shingle_hashes("abcdé", o, s);  // 5 code points -> 3 trigrams
  EXPECT_EQ(s.size(), 3u);
  // Order matters within a word shingle.
  MinHashOptions w;
  w.ngram = 2;
  std::vector<uint64_t> x, y;
  shingle_hashes("a b", w, x);
  shingle_hashes("b a", w, y);
  EXPECT_NE(x, y);
}

TEST(CurateMinHash, EstimateTracksExactJaccard) {
  std::mt19937_64 rng(42);
  MinHashOptions o;
  MinHasher h(o);
  o.bands = 32;
  o.rows = 8;  // 256 permutations: a tighter estimate
  MinHasher h256(o);
  for (double f : {0.02, 0.1, 0.3}) {
    auto a = random_words(rng, 400);
    auto b = mutate(rng, a, f);
    std::string ta = join(a), tb = join(b);
    double j = exact_jaccard(ta, tb, o);
    std::vector<uint64_t> sa, sb, scratch;
    ASSERT_TRUE(h256.signature(normalize_text(ta), sa, scratch));
    ASSERT_TRUE(h256.signature(normalize_text(tb), sb, scratch));
    double est = estimated_jaccard(sa.data(), sb.data(), h256.size());
    EXPECT_NEAR(est, j, 0.1) << "mutation " << f;
  }
}

// The LSH detection curve, 14 x 8: pairs at J ~ 0.95 are found, pairs at J ~ 0.3 are not, and the
// found fraction at intermediate J follows 1 - (1 - J^8)^14.
TEST(CurateMinHash, LshDetectionFollowsTheCurve) {
  std::mt19937_64 rng(7);
  DedupOptions opt;
  opt.exact = false;
  struct Bin {
    double lo, hi;
    int pairs = 0, found = 0;
    double expected = 0;
  };
  std::vector<Bin> bins = {{0.90, 1.0}, {0.65, 0.8}, {0.2, 0.4}};
  // Mutation rates chosen so 5-gram Jaccard lands in each bin (J ~ (1-f)^5 / (2 - (1-f)^5)).
  std::vector<double> rates = {0.005, 0.03, 0.12};
  for (size_t bi = 0; bi < bins.size(); ++bi) {
    for (int t = 0; t < 150; ++t) {
      auto a = random_words(rng, 300);
      auto b = mutate(rng, a, rates[bi]);
      std::string ta = join(a), tb = join(b);
      double j = exact_jaccard(ta, tb, opt.minhash);
      if (j < bins[bi].lo || j > bins[bi].hi || ta == tb) continue;
      auto f = fates({ta, tb}, opt);
      ++bins[bi].pairs;
      bins[bi].found += f[1] == Fate::kNear;
      bins[bi].expected += lsh_probability(j, 14, 8);
    }
  }
  for (auto& b : bins) {
    ASSERT_GT(b.pairs, 30) << "bin " << b.lo;
    double rate = static_cast<double>(b.found) / b.pairs, expected = b.expected / b.pairs;
    EXPECT_NEAR(rate, expected, 0.12) << "J in [" << b.lo << ", " << b.hi << "]: " << b.found << "/" << b.pairs;
  }
  EXPECT_GE(bins[0].found, bins[0].pairs - 1);  // J >= 0.9: P >= 0.9997
  EXPECT_LE(bins[2].found, 1);                  // J <= 0.4: P <= 0.009
}

TEST(CurateDedup, ExactDuplicatesIgnoreCaseWhitespacePunctuation) {
  DedupOptions opt;
  opt.near = false;
  auto f = fates({"The quick brown fox.", "the  QUICK\nbrown fox", "The quick brown fox!!", "a different text"}, opt);
  EXPECT_EQ(f[0], Fate::kKept);
  EXPECT_EQ(f[1], Fate::kExact);
  EXPECT_EQ(f[2], Fate::kExact);
  EXPECT_EQ(f[3], Fate::kKept);
}

TEST(CurateDedup, ParagraphsRemovedAndEmptiedDocuments) {
  DedupOptions opt;
  opt.paragraphs = true;
  opt.near = false;
  std::vector<std::string> texts = {"Intro one.\n\nShared boilerplate.\nSecond line.", "Other intro.\n \nshared BOILERPLATE\nsecond line",
                                    "Shared boilerplate.\nSecond line.\n\n\nIntro one."};
  Deduper d(opt);
  std::vector<std::string_view> v(texts.begin(), texts.end());
  d.add(v);
  d.finish();
  EXPECT_EQ(d.fate(0), Fate::kKept);
  EXPECT_EQ(d.fate(1), Fate::kKept);
  EXPECT_EQ(d.kept_text(1, texts[1]), "Other intro.");
  EXPECT_EQ(d.fate(2), Fate::kAllParagraphs);
  const auto& r = d.report();
  EXPECT_EQ(r.paragraphs_seen, 6u);
  EXPECT_EQ(r.paragraphs_removed, 3u);
  EXPECT_EQ(r.paragraphs.docs_out, 2u);
  EXPECT_EQ(r.paragraphs.bytes_out, texts[0].size() + std::string("Other intro.").size());
  EXPECT_EQ(r.removed_by_reason.at("all paragraphs duplicated"), 1u);
}

TEST(CurateDedup, SplitParagraphs) {
  auto p = split_paragraphs("\n\na\nb\n  \t\n\nc\n");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0], "a\nb");
  EXPECT_EQ(p[1], "c");
  EXPECT_TRUE(split_paragraphs(" \n ").empty());
}

// Every document is kept or removed with a reason, bytes add up, and the result does not depend on
// the thread count or the batch size.
TEST(CurateDedup, AccountingAndDeterminism) {
  std::mt19937_64 rng(3);
  std::vector<std::string> texts;
  std::vector<std::string> bases;
  for (int i = 0; i < 40; ++i) bases.push_back(join(random_words(rng, 120)));
  for (int i = 0; i < 400; ++i) {
    const std::string& b = bases[rng() % bases.size()];
    switch (rng() % 4) {
      case 0: texts.push_back(b); break;
      case 1: texts.push_back(join(mutate(rng, {b}, 0.0)) + " EXTRA"); break;
      case 2: texts.push_back(join(random_words(rng, 50))); break;
      default: texts.push_back(b + "\n\n" + join(random_words(rng, 20))); break;
    }
  }
  texts.push_back("");
  texts.push_back("!!!");
  DedupOptions opt;
  opt.paragraphs = true;
  opt.threads = 1;
  auto f1 = fates(texts, opt, 13);
  opt.threads = 4;
  auto f4 = fates(texts, opt, 64);
  EXPECT_EQ(f1, f4);
  opt.threshold = 0.8;
  EXPECT_EQ(fates(texts, opt, 5), fates(texts, opt, 500));

  opt.threshold = 0;
  Deduper d(opt);
  std::vector<std::string_view> v(texts.begin(), texts.end());
  d.add(v);
  d.finish();
  const auto& r = d.report();
  uint64_t removed = 0;
  for (const auto& [k, n] : r.removed_by_reason) removed += n;
  EXPECT_EQ(r.documents_in, texts.size());
  EXPECT_EQ(r.documents_in, r.documents_kept + removed);
  EXPECT_EQ(r.paragraphs.docs_in - r.paragraphs.docs_out + r.exact.docs_removed() + r.near.docs_removed(),
            r.documents_in - r.documents_kept);
  EXPECT_EQ(r.paragraphs.docs_out, r.exact.docs_in);
  EXPECT_EQ(r.exact.docs_out, r.near.docs_in);
  uint64_t kept_bytes = 0, total = 0;
  for (size_t i = 0; i < d.size(); ++i) {
    total += texts[i].size();
    if (d.fate(i) == Fate::kKept) kept_bytes += d.kept_text(i, texts[i]).size();
    if (d.fate(i) == Fate::kExact || d.fate(i) == Fate::kNear) {
      EXPECT_LT(d.duplicate_of(i), i);
      EXPECT_EQ(d.fate(d.duplicate_of(i)), Fate::kKept);
    }
  }
  EXPECT_EQ(r.bytes_in, total);
  EXPECT_EQ(r.bytes_kept, kept_bytes);
  EXPECT_GT(r.exact.docs_removed(), 0u);
  EXPECT_GT(r.near.docs_removed(), 0u);
  EXPECT_GT(r.paragraphs_removed, 0u);
}

// Results decided elsewhere (the MPI path's rank 0) give the report and decisions finish() gives,
// apart from the counts only the hashing side knows (candidate pairs, documents without shingles).
TEST(CurateDedup, SetResultsMatchesFinish) {
  std::mt19937_64 rng(9);
  std::vector<std::string> bases, texts;
  for (int i = 0; i < 20; ++i) bases.push_back(join(random_words(rng, 80)));
  for (int i = 0; i < 150; ++i) {
    const std::string& b = bases[rng() % bases.size()];
    texts.push_back(rng() % 2 ? b : b + " more words here");
  }
  texts.push_back("?!");
  DedupOptions opt;
  opt.threads = 2;
  Deduper a(opt);
  std::vector<std::string_view> v(texts.begin(), texts.end());
  a.add(v);
  a.finish();
  std::vector<Fate> fate;
  std::vector<uint32_t> of;
  std::vector<uint64_t> bytes;
  for (size_t i = 0; i < a.size(); ++i) {
    fate.push_back(a.fate(i));
    of.push_back(a.duplicate_of(i));
    bytes.push_back(texts[i].size());
  }
  Deduper b(opt);
  b.set_results(fate, of, bytes);
  b.report().near_candidate_pairs = a.report().near_candidate_pairs;
  b.report().no_shingles = a.report().no_shingles;
  EXPECT_EQ(a.report().to_json(), b.report().to_json());
  EXPECT_GT(a.report().near_clusters, 0u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a.referenced(i), b.referenced(i)) << i;
  // Inconsistent results are refused.
  of[3] = 7;
  Deduper c(opt);
  EXPECT_THROW(c.set_results(fate, of, bytes), agpt::Error);
  Deduper d(opt);
  EXPECT_THROW(d.set_results(fate, {}, bytes), agpt::Error);  // sizes differ
  of[3] = a.duplicate_of(3);
  ParagraphResults paras;
  paras.removed[2] = {0};
  Deduper e(opt);  // paragraph results without the paragraph stage
  EXPECT_THROW(e.set_results(fate, of, bytes, paras), agpt::Error);
  opt.paragraphs = true;
  Deduper f(opt);
  paras.bytes_after[2] = 0;
  f.set_results(fate, of, bytes, paras);
  EXPECT_EQ(f.report().paragraphs_removed, 1u);
  EXPECT_EQ(f.kept_text(2, "one\n\ntwo"), "two");
}

// The band-key table within a tiny budget spills sorted runs and merges them: the same buckets in the
// same order as in memory, and so the same decisions; the run files leave nothing behind.
TEST(CurateDedup, BandKeyTableSpillsAndMergesInOrder) {
  const fs::path dir = fs::temp_directory_path() / ("agpt_spill_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::mt19937_64 rng(4);
  BandKeyTable mem, disk(16 * 40, dir.string());  // 40 records a run
  for (uint32_t d = 0; d < 500; ++d)
    for (uint32_t b = 0; b < 3; ++b) {
      const BandRecord r{rng() % 50, b, d};  // many collisions
      mem.add(r);
      disk.add(r);
    }
  EXPECT_GT(disk.runs(), 30u);
  EXPECT_EQ(mem.runs(), 0u);
  auto flatten = [](BandKeyTable& t) {
    std::vector<std::tuple<uint32_t, uint64_t, uint32_t, size_t>> out;
    t.for_each_bucket([&](const BandRecord* m, size_t n) {
      for (size_t i = 0; i < n; ++i) out.emplace_back(m[i].band, m[i].key, m[i].doc, n);
    });
    return out;
  };
  const auto a = flatten(mem), b = flatten(disk);
  EXPECT_EQ(a.size(), 1500u);
  EXPECT_EQ(a, b);
  EXPECT_EQ(flatten(disk), b);  // read again
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_THROW(disk.add({1, 0, 0}), agpt::Error);
  EXPECT_TRUE(fs::is_empty(dir));  // runs are unlinked at once
  disk.release();
  fs::remove_all(dir);
  EXPECT_THROW(
      {
        BandKeyTable t(16, "/nonexistent/dir");
        for (uint32_t d = 0; d < 20; ++d) t.add({1, 0, d});
      },
      agpt::Error);

  std::vector<std::string> bases, texts;
  for (int i = 0; i < 30; ++i) bases.push_back(join(random_words(rng, 60)));
  for (int i = 0; i < 300; ++i) texts.push_back(bases[rng() % bases.size()] + (rng() % 2 ? " x y" : ""));
  DedupOptions opt;
  opt.threads = 2;
  for (double threshold : {0.0, 0.8}) {
    opt.threshold = threshold;
    opt.memory_bytes = 0;
    const auto unlimited = fates(texts, opt, 64);
    opt.memory_bytes = 300;
    EXPECT_EQ(fates(texts, opt, 64), unlimited) << threshold;
  }
}

TEST(CurateDedup, RunOverFilesKeepsFirstAndCountsSkips) {
  fs::path dir = fs::temp_directory_path() / ("agpt_test_curate_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::mt19937_64 rng(11);
  std::string base = join(random_words(rng, 200));
  {
    std::ofstream f(dir / "a.jsonl");
    f << "{\"id\":\"a1\",\"text\":\"" << base << "\"}\n";
    f << "{\"id\":\"a2\",\"text\":\"" << join(random_words(rng, 200)) << "\"}\n";
    f << "not json\n";
    f << "{\"id\":\"a3\",\"text\":\"" << base << " tail\"}\n";  // near duplicate of a1
    f << "{\"id\":\"a4\",\"text\":\"" << base << "!\"}\n";      // exact duplicate of a1
  }
  DedupOptions opt;
  opt.inputs = {(dir / "a.jsonl").string()};
  std::vector<std::string> kept, removed;
  DedupSink sink;
  sink.kept = [&](const agpt::corpus::Document& d) { kept.push_back(d.id); };
  sink.removed = [&](const agpt::corpus::Document& d, const char* why, const std::string& of) {
    removed.push_back(d.id + ":" + why + ":" + of);
  };
  auto r = run_dedup(opt, sink);
  EXPECT_EQ(kept, (std::vector<std::string>{"a1", "a2"}));
  EXPECT_EQ(removed, (std::vector<std::string>{"a3:near duplicate:a1", "a4:exact duplicate:a1"}));
  EXPECT_EQ(r.documents_in, 4u);
  EXPECT_EQ(r.read.skipped, 1u);
  EXPECT_NE(r.to_json().find("\"near duplicate\": 1"), std::string::npos);
  EXPECT_NE(r.table().find("total"), std::string::npos);
  fs::remove_all(dir);
}

// The ranks' shards under MPI: contiguous runs of files covering all of them in order, about equal bytes
// each, a file going to the rank that holds its middle byte; some ranks may get none.
TEST(CurateDedup, ShardInputFilesContiguousAndBalanced) {
  using V = std::vector<size_t>;
  EXPECT_EQ(shard_input_files({10, 10, 10, 10}, 1), (V{0, 4}));
  EXPECT_EQ(shard_input_files({10, 10, 10, 10}, 2), (V{0, 2, 4}));
  EXPECT_EQ(shard_input_files({10, 10, 10, 10}, 4), (V{0, 1, 2, 3, 4}));
  EXPECT_EQ(shard_input_files({10, 10, 10}, 2), (V{0, 1, 3}));  // the middle file's middle byte: rank 1
  EXPECT_EQ(shard_input_files({100, 1, 1, 1}, 2), (V{0, 1, 4}));
  EXPECT_EQ(shard_input_files({0, 0, 0}, 2), (V{0, 1, 3}));      // no bytes: by count
  EXPECT_EQ(shard_input_files({5}, 3), (V{0, 0, 1, 1}));         // more ranks than files: rank 1 has it
  EXPECT_EQ(shard_input_files({}, 2), (V{0, 0, 0}));
  EXPECT_THROW(shard_input_files({1}, 0), agpt::Error);
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<uint64_t> sizes(rng() % 20);
    uint64_t total = 0, largest = 0;
    for (auto& b : sizes) b = rng() % 3 == 0 ? 0 : rng() % 1000000, total += b, largest = std::max(largest, b);
    const int ranks = 1 + static_cast<int>(rng() % 6);
    const auto first = shard_input_files(sizes, ranks);
    ASSERT_EQ(first.size(), static_cast<size_t>(ranks) + 1);
    EXPECT_EQ(first.front(), 0u);
    EXPECT_EQ(first.back(), sizes.size());
    for (int r = 0; r < ranks; ++r) {
      ASSERT_LE(first[r], first[r + 1]);
      uint64_t bytes = 0;
      for (size_t i = first[r]; i < first[r + 1]; ++i) bytes += sizes[i];
      if (total > 0) {
        EXPECT_LE(bytes, total / static_cast<uint64_t>(ranks) + largest + 1);  // balanced
      }
    }
  }
}
