// Megatron compatibility mode: numpy RandomState, .npy reading, the fast exact greedy blend, and the
// whole order checked against Megatron-LM's own index caches (shared/testdata/megatron-index).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "base/error.h"
#include "base/file.h"
#include "dataset/indexed_dataset.h"
#include "dataset/megatron_blend.h"
#include "dataset/megatron_order.h"
#include "dataset/numpy_math.h"
#include "dataset/numpy_npy.h"
#include "dataset/numpy_random.h"

namespace fs = std::filesystem;
using namespace agpt;
using namespace agpt::dataset;

namespace {

const fs::path kFixtures = fs::path(AGPT_TESTDATA) / "megatron-index";

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("agpt_megatron_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A file whose tokens count up from `base` (mod 60000), so tokens reveal their position.
void write_source(const fs::path& prefix, const std::vector<int>& lengths, uint32_t base) {
  IndexedDatasetWriter w(prefix.string(), TokenDType::kUInt16);
  uint64_t t = 0;
  for (int len : lengths) {
    std::vector<uint32_t> doc(len);
    for (auto& x : doc) x = static_cast<uint32_t>((base + t++) % 60000);
    w.add_document(doc);
  }
  w.finish();
}

std::vector<uint16_t> naive_blend(const std::vector<double>& w, uint64_t n, std::vector<int64_t>* sample = nullptr) {
  std::vector<uint16_t> idx(n);
  if (sample) sample->resize(n);
  megatron_blend_naive(w, n, idx.data(), sample ? sample->data() : nullptr);
  return idx;
}

void expect_fast_equals_naive(const std::vector<double>& w, uint64_t n, const std::string& what) {
  std::vector<uint16_t> want = naive_blend(w, n);
  std::vector<uint16_t> got = megatron_blend(w, n);
  ASSERT_EQ(got.size(), want.size());
  auto mismatch = std::mismatch(got.begin(), got.end(), want.begin());
  EXPECT_TRUE(mismatch.first == got.end()) << what << ": first difference at sample " << (mismatch.first - got.begin())
                                           << " (fast " << (mismatch.first == got.end() ? -1 : *mismatch.first)
                                           << ", Megatron " << (mismatch.first == got.end() ? -1 : *mismatch.second) << ")";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// numpy pieces

TEST(NumpyRandom, Mt19937MatchesTheReferenceGenerator) {
  // numpy's RandomState(seed) seeds MT19937 with init_genrand, as std::mt19937(seed) does.
  for (uint32_t seed : {0u, 1u, 7u, 42u, 1234u, 5489u, 0xffffffffu}) {
    NumpyRandomState r(seed);
    std::mt19937 ref(seed);
    for (int i = 0; i < 5000; ++i) ASSERT_EQ(r.next_uint32(), ref()) << "seed " << seed << " draw " << i;
  }
  NumpyRandomState r(5489);
  EXPECT_EQ(r.next_uint32(), 3499211612u);  // the reference implementation's first output
}

TEST(NumpyRandom, IntervalAndShuffle) {
  NumpyRandomState r(3);
  for (uint64_t max : {0ull, 1ull, 2ull, 3ull, 5ull, 1000ull, 4294967295ull, 4294967296ull, 1ull << 40})
    for (int i = 0; i < 200; ++i) ASSERT_LE(r.random_interval(max), max);
  EXPECT_EQ(NumpyRandomState::smallest_mask(5), 7u);
  EXPECT_EQ(NumpyRandomState::smallest_mask(8), 15u);
  // max == 0 draws nothing.
  NumpyRandomState a(9), b(9);
  a.random_interval(0);
  EXPECT_EQ(a.next_uint32(), b.next_uint32());
  // A 64-bit interval takes its draws high word first.
  NumpyRandomState c(11), d(11);
  uint64_t hi = d.next_uint32(), lo = d.next_uint32();
  EXPECT_EQ(c.next_uint64(), hi << 32 | lo);
  std::vector<int32_t> v(1000);
  for (int i = 0; i < 1000; ++i) v[i] = i;
  NumpyRandomState s(1);
  s.shuffle(v.data(), v.size());
  std::vector<int32_t> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_NE(v[0], 0);
}

TEST(NumpyRandom, BranchFreeShuffleTakesTheReferenceDraws) {
  // shuffle() masks every draw without a branch; it must swap and consume exactly as numpy's loop
  // (random_interval(i) for i = n-1 down to 1), across mask changes and twists, and leave the
  // generator where numpy would.
  for (size_t n : {size_t(2), size_t(3), size_t(5), size_t(64), size_t(65), size_t(624), size_t(1000), size_t(4097),
                   size_t(100000)}) {
    NumpyRandomState fast(7 + static_cast<uint32_t>(n)), ref(7 + static_cast<uint32_t>(n));
    std::vector<int32_t> a(n), b(n);
    for (size_t i = 0; i < n; ++i) a[i] = b[i] = static_cast<int32_t>(i);
    for (int round = 0; round < 3; ++round) {
      fast.shuffle(a.data(), n);
      for (size_t i = n - 1; i >= 1; --i) std::swap(b[i], b[ref.random_interval(i)]);
      ASSERT_EQ(a, b) << "n " << n << " round " << round;
    }
    EXPECT_EQ(fast.next_uint32(), ref.next_uint32()) << "n " << n;
  }
}

TEST(NumpyMath, PairwiseSumRoundRobinAndPythonRound) {
  // numpy.sum(numpy.full(10, 0.1)) == 1.0 (8 accumulators), while a left-to-right sum gives 0.9999999999999999.
  std::vector<double> tenth(10, 0.1);
  EXPECT_EQ(numpy_sum(tenth.data(), tenth.size()), 1.0);
  double seq = 0;
  for (double x : tenth) seq += x;
  EXPECT_EQ(seq, 0.9999999999999999);
  // Fewer than 8: left to right.
  std::vector<double> five = {3.0, 1.0, 2.0, 1.0, 0.5};
  EXPECT_EQ(numpy_sum(five.data(), 5), 7.5);
  EXPECT_EQ(numpy_normalize(five)[0], 0.4);
  // Above 128 values the array is split in halves (a multiple of 8 first): sum of 1..1000 is exact.
  std::vector<double> many(1000);
  for (int i = 0; i < 1000; ++i) many[i] = i + 1;
  EXPECT_EQ(numpy_sum(many.data(), many.size()), 500500.0);
  EXPECT_EQ(python_round(0.5), 0.0);
  EXPECT_EQ(python_round(1.5), 2.0);
  EXPECT_EQ(python_round(2.5), 2.0);
  EXPECT_EQ(python_round(2.5000000000000004), 3.0);
  EXPECT_EQ(python_round(-1.5), -2.0);
  EXPECT_EQ(python_round(7.49), 7.0);
  EXPECT_EQ(python_round(1e17), 1e17);
}

TEST(NumpyNpy, ReadsHeadersAndRefusesWhatItCannotRead) {
  auto make = [](const std::string& header_dict, const std::string& data) {
    std::string h = header_dict;
    while ((10 + h.size() + 1) % 64) h += ' ';
    h += '\n';
    std::string out("\x93NUMPY\x01\x00", 8);
    out += char(h.size() & 0xff);
    out += char(h.size() >> 8);
    return out + h + data;
  };
  std::string data;
  for (int32_t v : {1, -2, 3, 4, 5, 6}) data.append(reinterpret_cast<const char*>(&v), 4);
  NpyArray a = parse_npy(make("{'descr': '<i4', 'fortran_order': False, 'shape': (3, 2), }", data), "t.npy");
  EXPECT_EQ(a.shape, (std::vector<uint64_t>{3, 2}));
  EXPECT_EQ(a.size(), 6u);
  EXPECT_EQ(a.as<int64_t>(), (std::vector<int64_t>{1, -2, 3, 4, 5, 6}));
  EXPECT_THROW(a.as<uint32_t>(), Error);  // -2 does not fit
  EXPECT_THROW(parse_npy("not a numpy file", "x.npy"), Error);
  EXPECT_THROW(parse_npy(make("{'descr': '<i4', 'fortran_order': False, 'shape': (4, 2), }", data), "t.npy"), Error);
  EXPECT_THROW(parse_npy(make("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (6,), }", data), "t.npy"),
               Error);
  EXPECT_THROW(parse_npy(make("{'descr': '|O', 'fortran_order': False, 'shape': (6,), }", data), "t.npy"), Error);
  try {
    parse_npy(make("{'descr': '<c16', 'fortran_order': False, 'shape': (6,), }", data), "weird.npy");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weird.npy"), std::string::npos);
  }
  std::string big;
  for (int16_t v : {1, 2}) {
    big += char(v >> 8);
    big += char(v & 0xff);
  }
  EXPECT_EQ(parse_npy(make("{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }", big), "b.npy").as<int16_t>(),
            (std::vector<int16_t>{1, 2}));
}

TEST(MegatronSplit, MatrixLikeMegatron) {
  auto m = megatron_split_matrix("90,8,2");
  ASSERT_TRUE(m[0] && m[1] && m[2]);
  EXPECT_EQ(m[0]->first, 0.0);
  EXPECT_EQ(m[0]->second, 0.9);
  EXPECT_EQ(m[1]->second, 0.98);
  EXPECT_EQ(m[2]->second, 1.0);
  auto one = megatron_split_matrix("100,0,0");
  ASSERT_TRUE(one[0]);
  EXPECT_FALSE(one[1]);
  EXPECT_FALSE(one[2]);
  EXPECT_EQ(one[0]->second, 1.0);
  EXPECT_TRUE(megatron_split_matrix("1")[0]);
  EXPECT_THROW(megatron_split_matrix("1,2,3,4"), Error);
  EXPECT_THROW(megatron_split_matrix("0,0,0"), Error);
  EXPECT_THROW(megatron_split_matrix("1.2.3"), Error);
}

// ---------------------------------------------------------------------------------------------
// The greedy blend: MegatronBlender (classes, level, active set) against Megatron's O(N*S) loop

TEST(MegatronBlend, FastEqualsNaiveOnFixtureLikeAndEdgeWeights) {
  expect_fast_equals_naive(numpy_normalize({3.0, 1.0, 2.0, 1.0, 0.5}), 200000, "fixture weights");
  expect_fast_equals_naive({1.0}, 1000, "one dataset");
  expect_fast_equals_naive({0.5, 0.5}, 100000, "two equal");
  expect_fast_equals_naive({0.25, 0.75}, 100000, "two");
  // Weights one ulp apart (the comparison is decided by rounding for long stretches).
  const double h = 0.5;
  expect_fast_equals_naive({h, std::nextafter(h, 0.0)}, 300000, "one ulp apart");
  expect_fast_equals_naive({std::nextafter(h, 0.0), h}, 300000, "one ulp apart, reversed");
  expect_fast_equals_naive({1.0 / 3, 1.0 / 3, std::nextafter(1.0 / 3, 1.0)}, 300000, "thirds");
  // Tiny and zero weights next to large ones.
  expect_fast_equals_naive({0.999999, 1e-6, 1e-12, 0.0, 1e-300}, 200000, "tiny weights");
  // Weights that do not sum to one (the rule does not care).
  expect_fast_equals_naive({3.0, 1.0, 2.0}, 100000, "unnormalised");
}

TEST(MegatronBlend, FastEqualsNaiveOnManyEqualWeights) {
  // The synthetic AuroraGPT list: 2,419 files of weight 1.
  std::vector<double> w = numpy_normalize(std::vector<double>(2419, 1.0));
  expect_fast_equals_naive(w, 150000, "2419 equal");
  std::vector<int64_t> sample;
  std::vector<uint16_t> idx = naive_blend(w, 5000, &sample);
  MegatronBlender b(w, 5000);
  for (uint64_t i = 0; i < 5000; ++i) {
    uint32_t d = b.next();
    ASSERT_EQ(d, idx[i]);
    ASSERT_EQ(b.count(d), uint64_t(sample[i]) + 1);
  }
}

TEST(MegatronBlend, FastEqualsNaiveOnRandomWeights) {
  std::mt19937_64 rng(20240611);
  // 2,419 lognormal weights (corpus-like shares).
  {
    std::lognormal_distribution<double> ln(0, 2);
    std::vector<double> raw(2419);
    for (auto& x : raw) x = ln(rng);
    expect_fast_equals_naive(numpy_normalize(raw), 60000, "2419 lognormal");
  }
  // Mixed: groups of equal weights, a few tiny ones, many sizes.
  for (int trial = 0; trial < 120; ++trial) {
    const int S = 1 + int(rng() % 64);
    std::vector<double> raw(S);
    const int groups = 1 + int(rng() % 4);
    std::vector<double> values(groups);
    for (auto& v : values) v = std::ldexp(double(1 + rng() % 1000), -int(rng() % 30));
    for (auto& x : raw) {
      x = values[rng() % groups];
      if (rng() % 10 == 0) x = 1e-9 * double(1 + rng() % 5);
    }
    const uint64_t n = 1 + rng() % 40000;
    expect_fast_equals_naive(trial % 2 ? numpy_normalize(raw) : raw, n, "random trial " + std::to_string(trial));
    if (HasFailure()) return;
  }
}

TEST(MegatronBlend, FastEqualsNaiveWithManyBlocksOfRepeatedWeights) {
  // Hundreds of classes, each class several datasets of one weight, spread over
  // the index range: exercises the class turns, the active set and its tie-breaking.
  std::mt19937_64 rng(77);
  for (int trial = 0; trial < 12; ++trial) {
    const int S = 200 + int(rng() % 2300);
    const int K = 20 + int(rng() % 400);
    std::vector<double> values(K);
    std::lognormal_distribution<double> ln(0, trial % 3 == 0 ? 0.05 : 1.5);  // near-uniform or spread
    for (auto& v : values) v = ln(rng);
    std::vector<double> raw(S);
    for (auto& x : raw) x = values[rng() % K];
    const uint64_t n = 5000 + rng() % 25000;
    expect_fast_equals_naive(numpy_normalize(numpy_normalize(raw)), n, "repeated-weights trial " + std::to_string(trial));
    if (HasFailure()) return;
  }
}

TEST(MegatronBlend, FastEqualsNaiveOnWeightsUlpsApart) {
  // 600 distinct weights within a few ulps of each other: many lines tie within the margin,
  // every comparison is decided by rounding (still exact).
  std::vector<double> w(600);
  for (size_t d = 0; d < w.size(); ++d) {
    w[d] = 1.0 / 600;
    for (size_t k = 0; k < d % 7; ++k) w[d] = std::nextafter(w[d], 1.0);
  }
  expect_fast_equals_naive(w, 60000, "ulps apart");
  // The token-count weights of the synthetic AuroraGPT shape: 2,419 files, +-50% sizes.
  std::mt19937_64 rng(9);
  std::vector<double> raw(2419);
  for (auto& x : raw) x = std::floor(8.3e6 * (0.5 + std::uniform_real_distribution<double>(0, 1)(rng)));
  expect_fast_equals_naive(numpy_normalize(numpy_normalize(raw)), 40000, "token-count weights");
}

TEST(MegatronBlend, FastEqualsNaiveAtLargeSampleCounts) {
  // Large x: the doubles round at coarser steps, so the certificates must keep their margin.
  expect_fast_equals_naive({0.3, 0.3, 0.4}, 3000000, "three, 3M samples");
  expect_fast_equals_naive({0.5, std::nextafter(0.5, 0.0)}, 2000000, "ulp apart, 2M samples");
  std::mt19937_64 rng(5);
  std::vector<double> raw(40);
  for (auto& x : raw) x = double(1 + rng() % 100);
  expect_fast_equals_naive(numpy_normalize(raw), 1000000, "40 sources, 1M samples");
}

TEST(MegatronBlend, FastEqualsNaiveOnLongRunsWithFarAndZeroWeights) {
  // More classes than are scanned whole: the level, the active set, the ring of due steps, the far
  // list (weights so small that their due step lies beyond the ring), zero weights that never rise,
  // and levels that are missed and lowered.
  std::mt19937_64 rng(31);
  std::lognormal_distribution<double> ln(0, 3);
  std::vector<double> raw(300);
  for (auto& x : raw) x = ln(rng);
  raw[7] = 1e-7;
  raw[100] = 0.0;
  raw[200] = 3e-9;
  raw[299] = raw[3];  // a class of two
  const std::vector<double> w = numpy_normalize(raw);
  expect_fast_equals_naive(w, 400000, "300 lognormal(0, 3) with far and zero weights");
  MegatronBlender b(w, 400000);
  for (int i = 0; i < 400000; ++i) b.next();
  EXPECT_LT(b.evaluations(), uint64_t(400000) * 300 / 4) << "the active set should be a small part of the classes";
  // Token-count weights (2,419 files, +-50%), as the AuroraGPT shape with --weights tokens.
  std::vector<double> tokens(2419);
  for (auto& x : tokens) x = std::floor(8.3e6 * (0.5 + std::uniform_real_distribution<double>(0, 1)(rng)));
  expect_fast_equals_naive(numpy_normalize(numpy_normalize(tokens)), 150000, "2419 token-count weights, long");
}

// ---------------------------------------------------------------------------------------------
// Against Megatron-LM's caches

namespace {

struct Fixture {
  fs::path dir;
  nlohmann::json summary;
  // (file stem, split) -> cache file prefix; split -> blended cache prefix and description.
  std::map<std::pair<std::string, std::string>, std::pair<std::string, nlohmann::json>> gpt;
  std::map<std::string, std::pair<std::string, nlohmann::json>> blend;
};

Fixture load_fixture(const std::string& name) {
  Fixture f;
  f.dir = kFixtures / name;
  f.summary = nlohmann::json::parse(read_file((f.dir / "megatron_summary.json").string()));
  for (auto& e : fs::directory_iterator(f.dir / "megatron-cache")) {
    std::string file = e.path().filename().string();
    const std::string suffix = "-description.txt";
    if (file.size() < suffix.size() || file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    std::string base = (f.dir / "megatron-cache" / file.substr(0, file.size() - suffix.size())).string();
    auto desc = nlohmann::json::parse(read_file(e.path().string()));
    if (desc["class"] == "BlendedDataset") {
      f.blend[desc["split"].get<std::string>()] = {base, desc};
    } else {
      std::string stem = fs::path(desc["dataset_path"].get<std::string>()).filename().string();
      f.gpt[{stem, desc["index_split"].get<std::string>()}] = {base, desc};
    }
  }
  return f;
}

Split split_of(const std::string& s) {
  return s == "train" ? Split::kTrain : s == "valid" ? Split::kValid : Split::kTest;
}

// Checks every cached array of one fixture case; returns a one-line summary.
std::string check_case(const std::string& name) {
  Fixture f = load_fixture(name);
  MegatronOrderOptions opt;
  opt.list_path = (f.dir / "data_file_list.txt").string();
  opt.seq_len = f.summary["seq_length"].get<uint64_t>();
  opt.seed = f.summary["seed"].get<uint64_t>();
  opt.split = f.summary["split"].get<std::string>();
  for (int s = 0; s < kNumSplits; ++s) opt.samples[s] = f.summary["requested_samples"][s].get<uint64_t>();
  opt.surplus = f.summary["mid_level_dataset_surplus"].get<double>();
  MegatronOrder order = MegatronOrder::build(opt);
  EXPECT_TRUE(order.warnings().empty()) << order.warnings().front();

  uint64_t gpt_checked = 0, values_checked = 0;
  for (auto& [key, entry] : f.gpt) {
    const auto& [stem, split_text] = key;
    const Split split = split_of(split_text);
    uint32_t source = UINT32_MAX;
    for (uint32_t d = 0; d < order.prefixes().size(); ++d)
      if (fs::path(order.prefixes()[d]).filename().string() == stem) source = d;
    EXPECT_NE(source, UINT32_MAX) << stem;
    if (source == UINT32_MAX) continue;
    const std::string where = name + " " + stem + " " + split_text;
    const MegatronDatasetInfo& info = order.datasets(split)[source];
    EXPECT_EQ(info.num_samples, entry.second["num_samples"].get<uint64_t>()) << where;
    const MegatronGptIndex& g = order.gpt_index(split, source);
    NpyArray doc = read_npy(entry.first + "-document_index.npy");
    NpyArray smp = read_npy(entry.first + "-sample_index.npy");
    NpyArray shf = read_npy(entry.first + "-shuffle_index.npy");
    EXPECT_EQ(doc.descr, "<i4");
    EXPECT_EQ(std::vector<int32_t>(g.document_index.begin(), g.document_index.end()), doc.as<int32_t>())
        << where << ": document_index";
    EXPECT_EQ(smp.shape.size(), 2u);
    if (smp.shape.size() != 2) continue;
    EXPECT_EQ(smp.shape[1], 2u);
    EXPECT_EQ(smp.shape[0], info.total_samples + 1) << where;
    EXPECT_EQ(std::vector<uint32_t>(g.sample_index.begin(), g.sample_index.end()), smp.as<uint32_t>())
        << where << ": sample_index";
    EXPECT_EQ(std::vector<uint32_t>(g.shuffle_index.begin(), g.shuffle_index.end()), shf.as<uint32_t>())
        << where << ": shuffle_index";
    values_checked += doc.size() + smp.size() + shf.size();
    ++gpt_checked;
  }
  uint64_t blends_checked = 0;
  for (auto& [split_text, entry] : f.blend) {
    const Split split = split_of(split_text);
    const std::string where = name + " " + split_text + " blend";
    EXPECT_EQ(order.size(split), entry.second["size"].get<uint64_t>()) << where;
    EXPECT_EQ(order.size(split), f.summary[split_text + "_len"].get<uint64_t>()) << where;
    EXPECT_EQ(order.blend_weights(split), entry.second["weights"].get<std::vector<double>>()) << where;
    std::vector<int64_t> di = read_npy(entry.first + "-dataset_index.npy").as<int64_t>();
    std::vector<int64_t> dsi = read_npy(entry.first + "-dataset_sample_index.npy").as<int64_t>();
    EXPECT_EQ(di.size(), order.size(split)) << where;
    std::vector<int64_t> got_di, got_dsi;
    for (uint64_t i = 0; i < order.size(split); ++i) {
      got_di.push_back(order.dataset_index(split, i));
      got_dsi.push_back(static_cast<int64_t>(order.dataset_sample_index(split, i)));
    }
    EXPECT_EQ(got_di, di) << where << ": dataset_index";
    EXPECT_EQ(got_dsi, dsi) << where << ": dataset_sample_index";
    // The per-file GPTDataset descriptions inside the blend's agree too.
    for (size_t d = 0; d < entry.second["datasets"].size(); ++d)
      EXPECT_EQ(order.datasets(split)[d].num_samples, entry.second["datasets"][d]["num_samples"].get<uint64_t>()) << where;
    values_checked += 2 * di.size();
    ++blends_checked;
  }
  uint64_t samples_checked = 0;
  std::vector<uint32_t> tokens(opt.seq_len + 1);
  for (auto& [split_text, list] : f.summary["first_samples"].items()) {
    const Split split = split_of(split_text);
    for (size_t k = 0; k < list.size(); ++k) {
      const auto& want = list[k];
      MegatronOrder::Sample s = order.sample(split, k);
      EXPECT_EQ(s.source, want["dataset"].get<uint32_t>()) << name << " " << split_text << " sample " << k;
      EXPECT_EQ(s.dataset_sample, want["dataset_sample"].get<uint64_t>()) << name << " " << split_text << " sample " << k;
      order.read(split, k, tokens.data());
      EXPECT_EQ(tokens, want["tokens"].get<std::vector<uint32_t>>()) << name << " " << split_text << " sample " << k;
      ++samples_checked;
    }
  }
  EXPECT_GT(gpt_checked, 0u);
  EXPECT_GT(blends_checked, 0u);
  return cat(name, ": ", gpt_checked, " GPTDataset caches, ", blends_checked, " blends, ", values_checked,
             " index values, ", samples_checked, " sample token lists equal");
}

}  // namespace

class MegatronFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(MegatronFixture, EveryCachedIndexAndFirstSamplesMatch) {
  const std::string name = GetParam();
  if (!fs::exists(kFixtures / name / "megatron_summary.json")) GTEST_SKIP() << "no fixture " << (kFixtures / name);
  std::string summary = check_case(name);
  std::printf("  %s\n", summary.c_str());
}

INSTANTIATE_TEST_SUITE_P(Cases, MegatronFixture, ::testing::Values("blend-5files", "blend-split", "single"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// ---------------------------------------------------------------------------------------------
// Synthetic mixtures: reading, cursors, and where Megatron itself fails

TEST(MegatronOrder, SamplesAreConsecutiveWindowsOfTheShuffledDocumentStream) {
  fs::path dir = fresh_dir("windows");
  std::mt19937_64 rng(3);
  std::ofstream list(dir / "list.txt");
  for (int f = 0; f < 4; ++f) {
    std::vector<int> lengths(30 + f * 7);
    for (auto& x : lengths) x = int(rng() % 90);  // zero-length documents included
    lengths[0] = 5;
    write_source(dir / ("f" + std::to_string(f)), lengths, 10000u * f);
    list << (1 + f) << " f" << f << " c\n";
  }
  list.close();
  MegatronOrderOptions opt;
  opt.list_path = (dir / "list.txt").string();
  opt.seq_len = 17;
  opt.seed = 99;
  opt.split = "80,15,5";
  opt.samples = {900, 60, 20};
  MegatronOrder order = MegatronOrder::build(opt);
  std::vector<uint32_t> tokens(opt.seq_len + 1);
  for (int s = 0; s < kNumSplits; ++s) {
    const Split split = Split(s);
    ASSERT_GE(order.size(split), opt.samples[s]);
    // The sample index against Megatron's own loop (helpers.cpp build_sample_idx), written out
    // here document by document, over these zero-length and longer-than-seq_len documents.
    for (uint32_t d = 0; d < order.prefixes().size(); ++d) {
      IndexedDataset ds(order.prefixes()[d]);
      const MegatronGptIndex& g = order.gpt_index(split, d);
      const uint64_t total = order.datasets(split)[d].total_samples;
      std::vector<uint32_t> want(2 * (total + 1));
      uint64_t pos = 0;
      int64_t offset = 0;
      for (uint64_t k = 1; k <= total; ++k) {
        int64_t remaining = static_cast<int64_t>(opt.seq_len) + 1;
        while (remaining != 0) {
          const int64_t doc_size = static_cast<int64_t>(ds.document(g.document_index[pos]).size());
          const int64_t length = doc_size - offset;
          remaining -= length;
          if (remaining <= 0) {
            offset += remaining + length - 1;
            remaining = 0;
          } else {
            if (pos == g.document_index.size() - 1) {
              offset = doc_size - 1;
              break;
            }
            ++pos;
            offset = 0;
          }
        }
        want[2 * k] = static_cast<uint32_t>(pos);
        want[2 * k + 1] = static_cast<uint32_t>(offset);
      }
      ASSERT_EQ(std::vector<uint32_t>(g.sample_index.begin(), g.sample_index.end()), want)
          << "file " << d << ", " << split_name(split);
    }
    // Each file's shuffled document stream, as Megatron concatenates it.
    std::vector<std::vector<uint32_t>> stream(order.prefixes().size());
    for (uint32_t d = 0; d < order.prefixes().size(); ++d) {
      IndexedDataset ds(order.prefixes()[d]);
      for (int32_t doc : order.gpt_index(split, d).document_index) {
        auto t = ds.document(doc);
        stream[d].insert(stream[d].end(), t.begin(), t.end());
      }
    }
    MegatronOrder::Cursor cursor(order, split, 0);
    std::vector<uint64_t> counts(order.prefixes().size(), 0);
    for (uint64_t i = 0; i < order.size(split); ++i) {
      MegatronOrder::Sample a = order.sample(split, i);
      MegatronOrder::Sample b = cursor.next();
      ASSERT_EQ(a.source, b.source);
      ASSERT_EQ(a.dataset_sample, b.dataset_sample);
      ASSERT_EQ(a.dataset_sample, counts[a.source]++) << "dataset_sample_index counts the file's earlier samples";
      order.read(split, i, tokens.data());
      const uint64_t start = a.shuffled * opt.seq_len;
      ASSERT_LE(start + opt.seq_len + 1, stream[a.source].size());
      for (uint64_t t = 0; t <= opt.seq_len; ++t) ASSERT_EQ(tokens[t], stream[a.source][start + t]) << "sample " << i;
    }
    // A cursor started anywhere continues the same stream.
    for (uint64_t start : {uint64_t(1), order.size(split) / 2, order.size(split) - 1}) {
      MegatronOrder::Cursor c(order, split, start);
      MegatronOrder::Sample x = c.next(), y = order.sample(split, start);
      EXPECT_EQ(x.source, y.source);
      EXPECT_EQ(x.dataset_sample, y.dataset_sample);
    }
    EXPECT_THROW(order.sample(split, order.size(split)), Error);
  }
  fs::remove_all(dir);
}

TEST(MegatronOrder, OversampledBlendIsBuiltInsteadOfFailing) {
  // One file with half the weight and 40 light ones: the blend has 130 samples for 100 requested
  // (each light target rounds 1.25 up to 2), so the heavy file is drawn ~65 times, but its
  // GPTDataset (asked for ceil(50 * 1.005) = 51 samples) holds exactly 51: Megatron stops there.
  fs::path dir = fresh_dir("oversample");
  const int L = 8;
  std::ofstream list(dir / "list.txt");
  write_source(dir / "heavy", {51 * L + 1}, 0);
  list << "40 heavy\n";
  for (int f = 0; f < 40; ++f) {
    write_source(dir / ("light" + std::to_string(f)), {3 * L + 1}, 1000u * (f + 1));
    list << "1 light" << f << "\n";
  }
  list.close();
  MegatronOrderOptions opt;
  opt.list_path = (dir / "list.txt").string();
  opt.seq_len = L;
  opt.split = "100,0,0";
  opt.samples = {100, 0, 0};
  MegatronOrder order = MegatronOrder::build(opt);
  EXPECT_EQ(order.size(Split::kTrain), 130u);
  ASSERT_FALSE(order.warnings().empty());
  EXPECT_NE(order.warnings()[0].find("oversamples"), std::string::npos) << order.warnings()[0];
  const MegatronDatasetInfo& heavy = order.datasets(Split::kTrain)[0];
  EXPECT_GT(heavy.used, 51u);
  EXPECT_EQ(heavy.num_samples, heavy.used);
  EXPECT_GE(heavy.total_samples, heavy.used);
  std::vector<uint32_t> tokens(L + 1);
  for (uint64_t i = 0; i < order.size(Split::kTrain); ++i) order.read(Split::kTrain, i, tokens.data());
  fs::remove_all(dir);
}

TEST(MegatronOrder, SaveLoadRebuildsTheSameOrderAndNoticesChangedFiles) {
  fs::path dir = fresh_dir("saveload");
  std::ofstream list(dir / "list.txt");
  for (int f = 0; f < 3; ++f) {
    write_source(dir / ("s" + std::to_string(f)), std::vector<int>(40 + 10 * f, 37 + f), 5000u * f);
    list << (0.25 + f) << " s" << f << " corpus" << f << "\n";
  }
  list.close();
  MegatronOrderOptions opt;
  opt.list_path = (dir / "list.txt").string();
  opt.seq_len = 16;
  opt.seed = 5;
  opt.split = "95,5,0";
  opt.samples = {300, 10, 0};
  MegatronOrder a = MegatronOrder::build(opt);
  a.save((dir / "plan").string());
  EXPECT_NE(a.table().find("requested"), std::string::npos);
  MegatronOrder b = MegatronOrder::load((dir / "plan").string());
  for (Split split : {Split::kTrain, Split::kValid}) {
    ASSERT_EQ(a.size(split), b.size(split));
    for (uint64_t i = 0; i < a.size(split); ++i) {
      auto x = a.sample(split, i), y = b.sample(split, i);
      ASSERT_EQ(x.source, y.source);
      ASSERT_EQ(x.shuffled, y.shuffled);
    }
  }
  // A file rewritten with other document lengths is refused.
  write_source(dir / "s1", std::vector<int>(50, 41), 5000u);
  EXPECT_THROW(MegatronOrder::load((dir / "plan").string()), Error);
  fs::remove_all(dir);
}

TEST(MegatronOrder, ClearErrors) {
  fs::path dir = fresh_dir("errors");
  write_source(dir / "a", {10, 10, 10}, 0);
  write_source(dir / "b", {10}, 100);
  MegatronOrderOptions opt;
  opt.prefixes = {(dir / "a").string(), (dir / "b").string()};
  opt.weights = {1, 1};
  opt.seq_len = 4;
  opt.split = "90,10,0";
  opt.samples = {10, 0, 0};
  EXPECT_NO_THROW(MegatronOrder::build(opt));
  // b's single document rounds into train; valid gets none of it.
  opt.samples = {10, 2, 0};
  try {
    MegatronOrder::build(opt);
    FAIL() << "expected an error for a file with no valid tokens";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokens"), std::string::npos) << e.what();
  }
  opt.samples = {10, 0, 1};
  EXPECT_THROW(MegatronOrder::build(opt), Error);  // the test split has no documents at all
  opt.samples = {10, 0, 0};
  opt.seed = uint64_t(1) << 33;
  EXPECT_THROW(MegatronOrder::build(opt), Error);
  fs::remove_all(dir);
}
