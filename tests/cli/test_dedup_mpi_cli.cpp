// `mpirun -np 2|3 agpt data dedup`: the kept documents, the removed log and the report (less its timings) are
// byte-identical to one process's, with duplicates that cross the ranks' batches and files (each rank reads and
// writes only its share of the files); bad input ends the whole job with a clear error, never a hang.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "run_agpt.h"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The report without its "seconds" (timings differ between any two runs).
std::string without_seconds(const std::string& report) {
  return std::regex_replace(report, std::regex("\"seconds\": \\{[^}]*\\}"), "\"seconds\": {}");
}

class DedupMpiCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_cli_dedup_mpi_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "in" / "notes");
    const char* words[] = {"alpha",  "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
                           "lambda", "mu",   "nu",    "xi",    "omicron", "pi",   "rho", "sigma", "tau",  "upsilon"};
    auto doc = [&](int seed, int n) {
      std::string t;
      unsigned x = 2166136261u ^ seed;
      for (int i = 0; i < n; ++i) {
        x = x * 16777619u + 12345u;
        t += std::string(words[(x >> 8) % 20]) + std::to_string((x >> 16) % 50) + " ";
      }
      return t;
    };
    // Three JSONL files; with --batch-docs 3 every batch is split between the two ranks, so originals and
    // their copies (exact: same words, other case and punctuation; near: a few words added) land on different
    // ranks, in other files, before and after each other.
    for (int f = 0; f < 3; ++f) {
      std::ofstream out(dir_ / "in" / ("part" + std::to_string(f) + ".jsonl"));
      for (int d = 0; d < 14; ++d) {
        const int seed = f * 14 + d;
        out << "{\"id\":\"f" << f << "d" << d << "\",\"text\":\"" << doc(seed, 120) << "\"}\n";
        if (seed % 4 == 1) out << "{\"id\":\"x" << seed << "\",\"text\":\"" << doc(seed / 2, 120) << "!!\"}\n";
        if (seed % 5 == 2) out << "{\"id\":\"n" << seed << "\",\"text\":\"" << doc(seed / 3, 120) << " and more\"}\n";
        if (seed % 9 == 3) out << "{\"id\":\"e" << seed << "\",\"text\":\"...\"}\n";  // empty normal form
        // Paragraphs: one new, one shared with other documents, one repeating the first.
        if (seed % 3 == 0)
          out << "{\"id\":\"p" << seed << "\",\"text\":\"" << doc(seed + 500, 30) << "\\n\\n"
              << doc(seed / 6 + 900, 30) << "\\n\\n"
              << doc(seed + 500, 30) << "\"}\n";
      }
      if (f == 1) out << "not json\n";  // skipped and counted the same way
      // A document without an id in the first file, exactly duplicated in the last (another rank's): the
      // removed log names its original "#<number>", the global document number.
      if (f == 0) out << "{\"text\":\"" << doc(777, 80) << "\"}\n";
      if (f == 2) out << "{\"id\":\"noid-copy\",\"text\":\"" << doc(777, 80) << " ?\"}\n";
    }
    // Text files: one document each, ids relative to the directory given.
    std::ofstream(dir_ / "in" / "notes" / "a.txt") << doc(3, 120);
    std::ofstream(dir_ / "in" / "notes" / "b.md") << doc(100, 120);
    std::ofstream(dir_ / "in" / "notes" / "c.txt") << doc(100, 120) << " tail words";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }

  agpt::testing::CliResult mpirun(const std::string& args, int np = 2) {
    std::string cmd = "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " + std::string(AGPT_MPIEXEC) +
                      " -np " + std::to_string(np) + " --oversubscribe " + AGPT_BINARY + " " + args + " 2>&1";
    FILE* f = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    int status = pclose(f);
    return {WEXITSTATUS(status), out};
  }

  fs::path dir_;
};

TEST_F(DedupMpiCli, TwoRanksWriteWhatOneProcessWrites) {
  const std::string in = " -i " + p("in") + " -j 1";
  auto one = agpt::testing::run_agpt("data dedup" + in + " --batch-docs 3 -o " + p("one/kept.jsonl.zst") +
                                     " --report " + p("one/report.json") + " --removed " + p("one/removed.jsonl"));
  ASSERT_EQ(one.status, 0) << one.output;
  auto two = mpirun("data dedup" + in + " --batch-docs 3 -o " + p("two/kept.jsonl.zst") + " --report " +
                    p("two/report.json") + " --removed " + p("two/removed.jsonl"));
  ASSERT_EQ(two.status, 0) << two.output;
  EXPECT_NE(two.output.find("(2 ranks)"), std::string::npos) << two.output;
  EXPECT_EQ(slurp(p("one/kept.jsonl.zst")), slurp(p("two/kept.jsonl.zst")));
  const std::string removed = slurp(p("one/removed.jsonl"));
  EXPECT_EQ(removed, slurp(p("two/removed.jsonl")));
  EXPECT_EQ(without_seconds(slurp(p("one/report.json"))), without_seconds(slurp(p("two/report.json"))));
  // The corpus has what the test is about: both kinds of duplicates, one across files.
  EXPECT_NE(removed.find("exact duplicate"), std::string::npos) << removed;
  EXPECT_NE(removed.find("near duplicate"), std::string::npos) << removed;
  EXPECT_NE(removed.find("\"id\":\"notes/c.txt\",\"reason\":\"near duplicate\""), std::string::npos) << removed;
  EXPECT_NE(removed.find("\"id\":\"noid-copy\",\"reason\":\"exact duplicate\",\"duplicate_of\":\"#"),
            std::string::npos)
      << removed;
  // Three ranks, and one process under mpirun, write the same.
  for (int np : {1, 3}) {
    const std::string d = "np" + std::to_string(np);
    auto r = mpirun("data dedup" + in + " --batch-docs 3 -o " + p(d + "/kept.jsonl.zst") + " --report " +
                        p(d + "/report.json") + " --removed " + p(d + "/removed.jsonl"),
                    np);
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(slurp(p("one/kept.jsonl.zst")), slurp(p(d + "/kept.jsonl.zst"))) << np;
    EXPECT_EQ(removed, slurp(p(d + "/removed.jsonl"))) << np;
    EXPECT_EQ(without_seconds(slurp(p("one/report.json"))), without_seconds(slurp(p(d + "/report.json")))) << np;
  }
  // The ranks' part files are gone once rank 0 has joined them.
  for (const auto& e : fs::directory_iterator(dir_ / "two"))
    EXPECT_EQ(e.path().string().find(".part"), std::string::npos) << e.path();

  // Only exact, only near, near with verified pairs (signatures fetched from their ranks), one batch (split
  // in two), batches of one document (rank 0 hashes nothing), and a band-key table of 1 KB (sorted runs
  // spilled and merged) agree.
  fs::create_directories(dir_ / "spill");
  const std::string spill = " --memory-mb 0.001 --tmp-dir " + p("spill");
  for (const std::string& only :
       {std::string(" --batch-docs 3 --no-near"), std::string(" --batch-docs 5 --no-exact"),
        std::string(" --batch-docs 4 --threshold 0.6"), std::string(" --batch-docs 1000"),
        std::string(" --batch-docs 1 --threshold 0.6"), " --batch-docs 4" + spill,
        " --batch-docs 4 --threshold 0.6" + spill, std::string(" --batch-docs 3 --paragraphs"),
        " --batch-docs 2 --paragraphs --threshold 0.6" + spill, std::string(" --batch-docs 3 --exchange-mb 0.0005"),
        std::string(" --batch-docs 7 --exchange-mb 0.00001 --threshold 0.6")}) {
    auto a = agpt::testing::run_agpt("data dedup" + in + only + " -o " + p("a.jsonl") + " --removed " + p("ra.jsonl") +
                                     " --report " + p("a.json"));
    ASSERT_EQ(a.status, 0) << a.output;
    for (int np : {2, 3}) {
      auto b = mpirun("data dedup" + in + only + " -o " + p("b.jsonl") + " --removed " + p("rb.jsonl") + " --report " +
                          p("b.json"),
                      np);
      ASSERT_EQ(b.status, 0) << b.output;
      EXPECT_EQ(slurp(p("a.jsonl")), slurp(p("b.jsonl"))) << only << " np " << np;
      EXPECT_EQ(slurp(p("ra.jsonl")), slurp(p("rb.jsonl"))) << only << " np " << np;
      EXPECT_EQ(without_seconds(slurp(p("a.json"))), without_seconds(slurp(p("b.json")))) << only << " np " << np;
    }
    if (only.find("--paragraphs") != std::string::npos) {  // the stage had work across the ranks
      EXPECT_EQ(slurp(p("a.json")).find("\"paragraphs_removed\": 0"), std::string::npos);
      EXPECT_NE(slurp(p("ra.jsonl")).find("all paragraphs duplicated"), std::string::npos);
    }
  }
  EXPECT_TRUE(fs::is_empty(dir_ / "spill"));  // spilled runs leave nothing behind
  // And one process with the tiny budget writes what it writes without one.
  auto c = agpt::testing::run_agpt("data dedup" + in + " --batch-docs 3 --memory-mb 0.001 -o " + p("c.jsonl.zst") +
                                   " --report " + p("c.json") + " --removed " + p("c_removed.jsonl"));
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_EQ(slurp(p("one/kept.jsonl.zst")), slurp(p("c.jsonl.zst")));
  EXPECT_EQ(removed, slurp(p("c_removed.jsonl")));
  EXPECT_EQ(without_seconds(slurp(p("one/report.json"))), without_seconds(slurp(p("c.json"))));
}

// One input file: a plain JSONL file is cut between the ranks; a compressed one cannot be, and goes whole to
// one rank while the others read, hash and write nothing. Either way the output is one process's (the
// output is a directory here: dedup.jsonl.zst inside it).
TEST_F(DedupMpiCli, OneFileCutOrWhole) {
  // The same documents gzip-compressed (dedup with both stages off copies them).
  auto gz = agpt::testing::run_agpt("data dedup -i " + p("in/part0.jsonl") + " --no-exact --no-near -o " +
                                    p("gz/part0.jsonl.gz"));
  ASSERT_EQ(gz.status, 0) << gz.output;
  // A plain file with what the reader must treat as one process does wherever the cuts fall: a BOM, CRLF
  // line ends, blank lines, bad lines (named by their line numbers in the report) and no final newline.
  {
    std::ifstream src(dir_ / "in" / "part0.jsonl");
    std::ofstream edge(dir_ / "gz" / "edge.jsonl", std::ios::binary);
    edge << "\xEF\xBB\xBF";
    std::string line;
    for (int i = 0; std::getline(src, line); ++i) {
      edge << line << "\r\n";
      if (i % 4 == 1) edge << "  \r\n";
      if (i % 5 == 3) edge << "{\"id\": 1}\r\n";  // missing text
    }
    edge << "{\"id\":\"tail\",\"text\":\"no newline after this one\"}";
  }
  for (const std::string& file : {p("in/part0.jsonl"), p("gz/part0.jsonl.gz"), p("gz/edge.jsonl")}) {
    const std::string in = " -i " + file + " -j 1 --batch-docs 2";
    auto a = agpt::testing::run_agpt("data dedup" + in + " -o " + p("a/") + " --removed " + p("ra.jsonl") +
                                     " --report " + p("a.json"));
    ASSERT_EQ(a.status, 0) << a.output;
    EXPECT_NE(slurp(p("ra.jsonl")).find("exact duplicate"), std::string::npos);  // it had work
    // The read report (with the examples of skipped lines), as printed.
    const size_t from = a.output.find("\nread "), to = a.output.find("  stage");
    ASSERT_TRUE(from != std::string::npos && to != std::string::npos && from < to) << a.output;
    const std::string summary = a.output.substr(from, to - from);
    for (int np : {2, 3}) {
      auto b = mpirun("data dedup" + in + " -o " + p("b/") + " --removed " + p("rb.jsonl") + " --report " + p("b.json"),
                      np);
      ASSERT_EQ(b.status, 0) << b.output;
      EXPECT_EQ(slurp(p("a/dedup.jsonl.zst")), slurp(p("b/dedup.jsonl.zst"))) << file << " np " << np;
      EXPECT_EQ(slurp(p("ra.jsonl")), slurp(p("rb.jsonl"))) << file << " np " << np;
      EXPECT_EQ(without_seconds(slurp(p("a.json"))), without_seconds(slurp(p("b.json")))) << file << " np " << np;
      EXPECT_NE(b.output.find(summary), std::string::npos) << summary << "\n" << b.output;
    }
  }
}

TEST_F(DedupMpiCli, ErrorsEndTheJob) {
  auto missing = mpirun("data dedup -i " + p("missing.jsonl") + " -o " + p("o.jsonl"));
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.output.find("missing.jsonl"), std::string::npos) << missing.output;
  // A bad line with --on-error fail: every rank reads it; the job ends with the line named.
  auto bad = mpirun("data dedup -i " + p("in") + " -o " + p("o.jsonl") + " --on-error fail");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("part1.jsonl:"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("agpt error (rank"), std::string::npos) << bad.output;
  // Each rank reads only its share: a plain JSONL file is cut at byte offsets, so a bad line near the end of
  // one file is found by the last rank, which names its line as one process does.
  fs::create_directories(dir_ / "in2");
  {
    std::ofstream big(dir_ / "in2" / "big.jsonl");
    for (int i = 0; i < 30; ++i) big << "{\"id\":\"b" << i << "\",\"text\":\"line " << i << " of a file\"}\n";
    big << "{\"text\": 5}\n{\"id\":\"last\",\"text\":\"the end\"}\n";
  }
  auto alone = agpt::testing::run_agpt("data dedup -i " + p("in2") + " -o " + p("o.jsonl") + " --on-error fail");
  EXPECT_NE(alone.status, 0);
  EXPECT_NE(alone.output.find("big.jsonl:31: "), std::string::npos) << alone.output;
  auto last = mpirun("data dedup -i " + p("in2") + " -o " + p("o.jsonl") + " --on-error fail", 3);
  EXPECT_NE(last.status, 0);
  EXPECT_NE(last.output.find("big.jsonl:31: "), std::string::npos) << last.output;
  EXPECT_NE(last.output.find("agpt error (rank 2 of 3"), std::string::npos) << last.output;
  // Skipped, the line is counted and named in the report as one process does.
  auto skip1 = agpt::testing::run_agpt("data dedup -i " + p("in2") + " -o " + p("o1.jsonl") + " --report " + p("s1.json"));
  auto skip3 = mpirun("data dedup -i " + p("in2") + " -o " + p("o3.jsonl") + " --report " + p("s3.json"), 3);
  ASSERT_EQ(skip1.status, 0) << skip1.output;
  ASSERT_EQ(skip3.status, 0) << skip3.output;
  EXPECT_NE(skip3.output.find("big.jsonl:31: "), std::string::npos) << skip3.output;
  EXPECT_EQ(slurp(p("o1.jsonl")), slurp(p("o3.jsonl")));
  EXPECT_EQ(without_seconds(slurp(p("s1.json"))), without_seconds(slurp(p("s3.json"))));
  // --exchange-mb must be a size.
  auto bad_mb = mpirun("data dedup -i " + p("in") + " -o " + p("o.jsonl") + " --exchange-mb -1");
  EXPECT_NE(bad_mb.status, 0);
  EXPECT_NE(bad_mb.output.find("--exchange-mb"), std::string::npos) << bad_mb.output;
}

}  // namespace
