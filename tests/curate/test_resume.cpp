// Per-input-file resume of `agpt data filter` and `decontaminate` (curate/resumable_run.h): a run
// stopped after any number of input files and continued with resume (with another thread count)
// writes the same bytes as an uninterrupted run: kept and removed documents, attributes files and
// report. Resumes with other settings or inputs are refused; damaged partial files are redone.
// Also the pieces: streaming XXH64 and the chunked (gzip/zstd) output.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "base/error.h"
#include "corpus/stream.h"
#include "curate/chunked_output.h"
#include "curate/decontam.h"
#include "curate/filter.h"
#include "curate/hash.h"
#include "curate/progress_log.h"

using namespace agpt::curate;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
}

std::string prose(int n, int seed) {
  static const char* w[] = {"river", "stone", "light", "garden", "window", "market", "teacher", "planet", "signal",
                            "winter", "forest", "bridge", "letter", "number", "silver", "motion", "record", "summer"};
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += w[(i * 7 + seed) % 18];
    s += static_cast<char>('a' + (i + seed) % 26);
    s += static_cast<char>('a' + (i / 26) % 26);
    s += (i % 12 == 11) ? ".\\n" : " ";
  }
  return s + "end.";
}

// The report without its timing: what must be identical between runs.
std::string report_without_seconds(const std::string& json) {
  auto j = nlohmann::ordered_json::parse(json);
  j.erase("seconds");
  return j.dump(1);
}

// Every file below dir (relative name -> bytes).
std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = slurp(e.path());
  return out;
}

}  // namespace

TEST(Xxh64Stream, EqualsOneShotForAnySplit) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    std::string data(rng() % 300, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    Xxh64Stream h(trial);
    for (size_t at = 0; at < data.size();) {
      size_t n = std::min<size_t>(rng() % 70, data.size() - at);
      h.update(std::string_view(data).substr(at, n));
      at += n;
    }
    ASSERT_EQ(h.digest(), xxh64(data, trial)) << "size " << data.size();
  }
}

TEST(ChunkedOutput, ChunksReadAsOneStreamAndCutBackExactly) {
  const fs::path dir = fs::temp_directory_path() / ("agpt_chunked_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  // The third chunk is over the one-shot limit (8 MiB): compressed as it is written.
  std::string big;
  while (big.size() < (size_t{9} << 20)) big += prose(40, static_cast<int>(big.size() % 97)) + "\n";
  const std::vector<std::string> chunks = {"{\"a\":1}\n", "", big, "{\"z\":26}\n"};
  for (std::string name : {"o.jsonl", "o.jsonl.gz", "o.jsonl.zst"}) {
    SCOPED_TRACE(name);
    const std::string path = (dir / name).string();
    std::vector<ChunkMark> marks;
    {
      ChunkedOutput out(path, 0);
      for (const auto& c : chunks) {
        out.write(c.substr(0, c.size() / 2));
        out.write(c.substr(c.size() / 2));
        marks.push_back(out.end_chunk());
      }
      out.close();
    }
    std::string all;
    for (const auto& c : chunks) all += c;
    EXPECT_EQ(agpt::corpus::read_decompressed(path), all);
    const std::string bytes = slurp(path);
    uint64_t prev = 0;
    for (const auto& m : marks) {
      EXPECT_EQ(m.hash, xxh64(std::string_view(bytes).substr(prev, m.end - prev)));
      prev = m.end;
    }
    EXPECT_EQ(prev, bytes.size());
    // Cut after the second chunk and write the rest again: the same bytes.
    {
      ChunkedOutput out(path, marks[1].end);
      for (size_t i = 2; i < chunks.size(); ++i) {
        out.write(chunks[i]);
        out.end_chunk();
      }
      out.close();
    }
    EXPECT_EQ(slurp(path), bytes);
    EXPECT_THROW(ChunkedOutput(path, 0).write_line("two\nlines"), agpt::Error);
  }
  fs::remove_all(dir);
}

const std::string kBenchmarkText =
    "which of these gases makes up most of the air that we breathe on the surface of the earth today";

class ResumeRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_resume_run_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    // Eight input files: JSONL with good, short, repetitive and contaminated documents, a bad
    // line, an empty file, a gzip file and a text file.
    for (int f = 0; f < 5; ++f) {
      std::string s;
      for (int d = 0; d < 9; ++d) {
        std::string text;
        switch ((d + f) % 4) {
          case 0: text = prose(60 + d, d + 10 * f); break;
          case 1: text = "short text " + std::to_string(d); break;
          case 2: for (int i = 0; i < 20; ++i) text += "buy now and save big today.\\n"; break;
          case 3: text = prose(30 + d, d) + " " + kBenchmarkText + " " + prose(80, d + 3); break;
        }
        s += "{\"id\":\"f" + std::to_string(f) + "d" + std::to_string(d) + "\",\"text\":\"" + text + "\"}\n";
      }
      if (f == 2) s += "not json\n";
      spit(dir_ / "in" / ("part" + std::to_string(f) + ".jsonl"), s);
    }
    spit(dir_ / "in" / "part5_empty.jsonl", "");
    {
      ChunkedOutput gz((dir_ / "in" / "part6.jsonl.gz").string(), 0);
      gz.write("{\"id\":\"g\",\"text\":\"" + prose(90, 5) + " " + kBenchmarkText + "\"}\n");
      gz.close();
    }
    spit(dir_ / "in" / "sub" / "notes.md", prose(70, 9) + "\n");
    spit(dir_ / "bench.jsonl", "{\"id\":\"q1\",\"question\":\"" + kBenchmarkText + "\",\"answer\":\"nitrogen\"}\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  FilterOptions filter_options(const std::string& name, int threads) {
    FilterOptions o;
    o.inputs = {(dir_ / "in").string()};
    o.output = (dir_ / name / "kept.jsonl.zst").string();
    o.removed_output = (dir_ / name / "removed.jsonl.gz").string();
    o.attributes_dir = (dir_ / name / "attrs").string();
    o.config.c4 = true;
    o.config.set("length.min_words", 20.0, "test");
    o.threads = threads;
    o.batch_documents = 5;  // batches cross file boundaries
    return o;
  }
  DecontamOptions decontam_options(const std::string& name, int threads, uint32_t max_ngram_docs) {
    DecontamOptions o;
    o.inputs = {(dir_ / "in").string()};
    o.benchmarks = {(dir_ / "bench.jsonl").string()};
    o.output = (dir_ / name / "clean.jsonl").string();
    o.removed_output = (dir_ / name / "removed.jsonl.zst").string();
    o.attributes_dir = (dir_ / name / "attrs").string();
    o.ngram = 8;
    o.margin = 20;
    o.min_fragment = 150;
    o.max_ngram_docs = max_ngram_docs;
    o.threads = threads;
    o.batch_documents = 4;
    return o;
  }
  fs::path dir_;
};

// The outputs of a run in dir, with the report (its paths made relative to dir), as one value.
template <typename Report>
std::map<std::string, std::string> outputs(const fs::path& dir, const Report& r) {
  auto t = tree(dir);
  std::string report = report_without_seconds(r.to_json());
  const std::string d = dir.string();
  for (size_t at; (at = report.find(d)) != std::string::npos;) report.replace(at, d.size(), "<dir>");
  t["report"] = report;
  return t;
}

// Compares two runs' outputs file by file (naming the files that differ, not printing bytes).
void expect_same(const std::map<std::string, std::string>& got, const std::map<std::string, std::string>& want) {
  std::string names_got, names_want;
  for (const auto& [k, v] : got) names_got += k + " ";
  for (const auto& [k, v] : want) names_want += k + " ";
  ASSERT_EQ(names_got, names_want);
  for (const auto& [k, v] : want) {
    if (k == "report") EXPECT_EQ(got.at(k), v);
    else EXPECT_TRUE(got.at(k) == v) << k << " differs (" << got.at(k).size() << " vs " << v.size() << " bytes)";
  }
}

TEST_F(ResumeRun, FilterStoppedAnywhereAndResumedIsByteIdentical) {
  FilterReport clean_report = run_filter(filter_options("clean", 2), {});
  const auto expected = outputs(dir_ / "clean", clean_report);
  ASSERT_EQ(clean_report.read.files, 8u);
  ASSERT_GT(clean_report.documents_kept, 0u);
  ASSERT_GT(clean_report.removed_by_reason.size(), 1u);
  ASSERT_EQ(clean_report.read.skipped, 1u);
  ASSERT_EQ(expected.size(), 2u + 8u + 1u);  // kept, removed, 8 attributes files, report

  for (size_t stop : {1u, 3u, 6u, 7u}) {
    SCOPED_TRACE("stopped after " + std::to_string(stop));
    const std::string name = "r" + std::to_string(stop);
    FilterOptions o = filter_options(name, 3);
    o.stop_after_files = stop;
    EXPECT_THROW(run_filter(o, {}), agpt::Error);
    ASSERT_TRUE(fs::exists(progress_path(o.output)));
    ASSERT_FALSE(fs::exists(o.output));
    // An interruption in the middle of the next file's write leaves bytes the progress file does not know.
    { std::ofstream(partial_path(o.output), std::ios::app | std::ios::binary) << "torn"; }
    o.stop_after_files = 0;
    o.resume = true;
    o.threads = 1;
    FilterReport r = run_filter(o, {});
    EXPECT_EQ(r.files_resumed, stop);
    EXPECT_FALSE(fs::exists(progress_path(o.output)));
    EXPECT_FALSE(fs::exists(partial_path(o.output)));
    expect_same(outputs(dir_ / name, r), expected);
  }
  // Interrupted twice, resumed with four threads: still the same.
  FilterOptions o = filter_options("twice", 1);
  o.stop_after_files = 2;
  EXPECT_THROW(run_filter(o, {}), agpt::Error);
  o.resume = true;
  EXPECT_THROW(run_filter(o, {}), agpt::Error);
  o.stop_after_files = 0;
  o.threads = 4;
  FilterReport r = run_filter(o, {});
  EXPECT_EQ(r.files_resumed, 4u);
  expect_same(outputs(dir_ / "twice", r), expected);

  // Re-deciding from the attributes resumes as well.
  FilterOptions re = filter_options("clean", 2);
  re.from_attributes = true;
  re.output = (dir_ / "re" / "kept.jsonl").string();
  re.removed_output = (dir_ / "re" / "removed.jsonl").string();
  re.config.set("length.min_words", 40.0, "test");
  FilterReport re_clean = run_filter(re, {});
  const std::string re_kept = slurp(re.output);
  re.output = (dir_ / "re2" / "kept.jsonl").string();
  re.removed_output = (dir_ / "re2" / "removed.jsonl").string();
  re.stop_after_files = 5;
  EXPECT_THROW(run_filter(re, {}), agpt::Error);
  re.stop_after_files = 0;
  re.resume = true;
  FilterReport re_resumed = run_filter(re, {});
  EXPECT_EQ(slurp(re.output), re_kept);
  EXPECT_EQ(report_without_seconds(re_resumed.to_json()), report_without_seconds(re_clean.to_json()));
}

TEST_F(ResumeRun, DecontaminateStoppedAnywhereAndResumedIsByteIdentical) {
  for (uint32_t max_docs : {0u, 30u}) {  // one pass, and two (the first pass's result is kept)
    SCOPED_TRACE("max_ngram_docs " + std::to_string(max_docs));
    const std::string base = "d" + std::to_string(max_docs);
    DecontamReport clean_report = run_decontaminate(decontam_options(base + "clean", 2, max_docs), {});
    const auto expected = outputs(dir_ / (base + "clean"), clean_report);
    ASSERT_GT(clean_report.documents_contaminated, 3u);
    ASSERT_GT(clean_report.documents_cut, 0u);
    ASSERT_EQ(clean_report.items.size(), 1u);
    for (size_t stop : {2u, 6u}) {
      SCOPED_TRACE("stopped after " + std::to_string(stop));
      const std::string name = base + "r" + std::to_string(stop);
      DecontamOptions o = decontam_options(name, 3, max_docs);
      o.stop_after_files = stop;
      EXPECT_THROW(run_decontaminate(o, {}), agpt::Error);
      o.stop_after_files = 0;
      o.resume = true;
      o.threads = 1;
      DecontamReport r = run_decontaminate(o, {});
      EXPECT_EQ(r.files_resumed, stop);
      expect_same(outputs(dir_ / name, r), expected);
    }
  }
}

TEST_F(ResumeRun, RefusesOtherSettingsOrInputsAndRedoesDamagedFiles) {
  FilterOptions o = filter_options("x", 2);
  o.stop_after_files = 4;
  EXPECT_THROW(run_filter(o, {}), agpt::Error);
  auto refused = [](auto run, const std::vector<std::string>& words) {
    try {
      run();
      ADD_FAILURE() << "the resume must be refused";
    } catch (const agpt::Error& e) {
      for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what();
    }
  };
  FilterOptions other = o;
  other.stop_after_files = 0;
  other.resume = true;
  other.config.set("length.min_words", 21.0, "test");
  refused([&] { run_filter(other, {}); }, {"the options differ", "config", "x/kept.jsonl.zst.progress",
                                          "without --resume"});
  other = o;
  other.stop_after_files = 0;
  other.resume = true;
  other.removed_output.clear();
  refused([&] { run_filter(other, {}); }, {"the options differ", "removed ("});
  // An input added before the ones done: the inputs changed.
  spit(dir_ / "in" / "part0a.jsonl", "{\"id\":\"new\",\"text\":\"" + prose(80, 1) + "\"}\n");
  other = o;
  other.stop_after_files = 0;
  other.resume = true;
  refused([&] { run_filter(other, {}); }, {"input 2 was 'part1.jsonl'", "'part0a.jsonl' now", "the inputs changed"});
  fs::remove(dir_ / "in" / "part0a.jsonl");
  // An input done that changed since.
  {
    std::ofstream(dir_ / "in" / "part1.jsonl", std::ios::app) << "\n";
  }
  refused([&] { run_filter(other, {}); }, {"'part1.jsonl'", "it changed"});
  // Progress of another command.
  DecontamOptions d = decontam_options("x", 1, 0);
  d.output = o.output;
  d.resume = true;
  refused([&] { run_decontaminate(d, {}); }, {"written by `agpt data filter`"});

  // Start again from a fresh interrupted run; then damage the attributes file of input 2 and a
  // byte of the removed output's first chunk: the resume redoes everything from input 1.
  FilterReport clean_report = run_filter(filter_options("clean", 1), {});
  const auto expected = outputs(dir_ / "clean", clean_report);
  fs::remove_all(dir_ / "x");
  EXPECT_THROW(run_filter(o, {}), agpt::Error);
  spit(dir_ / "x" / "attrs" / "part1.jsonl.zst", "damaged");
  {
    std::fstream f(partial_path(o.removed_output), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(12);
    f.put('#');
  }
  o.stop_after_files = 0;
  o.resume = true;
  FilterReport r = run_filter(o, {});
  EXPECT_EQ(r.files_resumed, 0u);
  expect_same(outputs(dir_ / "x", r), expected);
}
