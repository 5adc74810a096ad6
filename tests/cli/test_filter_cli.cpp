// `agpt data filter` and `agpt data langid` through the binary: a TOML config, a language model
// trained here, attributes written and re-decided from, identical output for any -j, clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
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

const char* kEnglish[] = {
    "The program reads the configuration file and writes the results to the standard output.",
    "If the directory does not exist, the command creates it with the permissions of the user.",
    "This page describes the options that are accepted by the program and what they change.",
    "We thank everyone who contributed to the development of this software over the years."};
const char* kFrench[] = {
    "Le programme lit le fichier de configuration et écrit les résultats sur la sortie standard.",
    "Si le répertoire n'existe pas, la commande le crée avec les droits de l'utilisateur.",
    "Cette page décrit les options acceptées par le programme et ce qu'elles changent.",
    "Nous remercions tous ceux qui ont contribué au développement de ce logiciel depuis des années."};
const char* kGerman[] = {
    "Das Programm liest die Konfigurationsdatei und schreibt die Ergebnisse auf die Standardausgabe.",
    "Wenn das Verzeichnis nicht existiert, erzeugt der Befehl es mit den Rechten des Benutzers.",
    "Diese Seite beschreibt die Optionen, die das Programm akzeptiert, und was sie ändern.",
    "Wir danken allen, die im Laufe der Jahre zur Entwicklung dieser Software beigetragen haben."};

class FilterCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("agpt_cli_filter_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "train");
    auto write_lang = [&](const char* name, const char* const* s) {
      std::ofstream f(dir_ / "train" / name);
      for (int i = 0; i < 3; ++i) f << s[i] << "\n";  // the 4th sentence is held out
    };
    write_lang("en.txt", kEnglish);
    write_lang("fr.txt", kFrench);
    write_lang("de.txt", kGerman);
    std::ofstream d(dir_ / "docs.jsonl");
    // Long enough for the defaults with min_words lowered to 10 by the config below.
    d << "{\"id\":\"en\",\"text\":\"" << kEnglish[3] << " " << kEnglish[0] << "\"}\n";
    d << "{\"id\":\"fr\",\"text\":\"" << kFrench[3] << " " << kFrench[0] << "\"}\n";
    d << "{\"id\":\"de\",\"text\":\"" << kGerman[3] << " " << kGerman[0] << "\"}\n";
    d << "{\"id\":\"tiny\",\"text\":\"Too short.\"}\n";
    d << "{\"id\":\"rep\",\"text\":\"";
    for (int i = 0; i < 8; ++i) d << "The same sentence again and again here.\\n";
    d << "\"}\n";
    d << "not a document\n";
    std::ofstream(dir_ / "filter.toml") << "# lower the length rule for short test documents\n[length]\nmin_words = 10\n"
                                           "[quality]\nmax_mean_word_length = 12\n";
    std::ofstream(dir_ / "strict.toml") << "[length]\nmin_words = 25\n";
    std::ofstream(dir_ / "bad.toml") << "[length]\nmin_wrods = 10\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string p(const std::string& name) const { return (dir_ / name).string(); }
  std::string train_model() {
    auto r = agpt::testing::run_agpt("data langid train -i en=" + p("train/en.txt") + " -i fr=" + p("train/fr.txt") +
                                     " -i de=" + p("train/de.txt") + " -o " + p("langid.bin") + " --buckets-log2 14");
    EXPECT_EQ(r.status, 0) << r.output;
    return p("langid.bin");
  }
  fs::path dir_;
};

}  // namespace

TEST_F(FilterCli, LanguagesAttributesAndReDeciding) {
  const std::string model = train_model();
  auto pred = agpt::testing::run_agpt("data langid predict -m " + model + " -i " + p("docs.jsonl"));
  ASSERT_EQ(pred.status, 0) << pred.output;
  EXPECT_NE(pred.output.find("{\"id\":\"fr\",\"lang\":\"fr\""), std::string::npos) << pred.output;
  EXPECT_NE(pred.output.find("{\"id\":\"de\",\"lang\":\"de\""), std::string::npos) << pred.output;

  auto r = agpt::testing::run_agpt("data filter -i " + p("docs.jsonl") + " -o " + p("out.jsonl") + " --config " +
                                   p("filter.toml") + " --langid-model " + model + " --languages en,fr --attributes " +
                                   p("attrs") + " --report " + p("report.json") + " --removed " + p("removed.jsonl") +
                                   " -j 2");
  ASSERT_EQ(r.status, 0) << r.output;
  std::string out = slurp(p("out.jsonl")), removed = slurp(p("removed.jsonl")), report = slurp(p("report.json"));
  EXPECT_NE(out.find("\"id\":\"en\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"id\":\"fr\""), std::string::npos) << out;
  EXPECT_EQ(out.find("\"id\":\"de\""), std::string::npos) << out;
  EXPECT_NE(removed.find("\"id\":\"de\",\"reason\":\"langid.languages\""), std::string::npos) << removed;
  EXPECT_NE(removed.find("\"id\":\"tiny\",\"reason\":"), std::string::npos) << removed;
  EXPECT_NE(removed.find("\"id\":\"rep\",\"reason\":\"repetition.max_dup_line_frac\""), std::string::npos) << removed;
  EXPECT_NE(report.find("\"documents_in\": 5"), std::string::npos) << report;
  EXPECT_NE(report.find("\"documents_kept\": 2"), std::string::npos) << report;
  EXPECT_NE(report.find("\"skipped\": 1"), std::string::npos) << report;
  EXPECT_TRUE(fs::exists(p("attrs/docs.jsonl.zst")));

  // Same output with one thread.
  auto r1 = agpt::testing::run_agpt("data filter -i " + p("docs.jsonl") + " -o " + p("out1.jsonl") + " --config " +
                                    p("filter.toml") + " --langid-model " + model + " --languages en,fr -j 1");
  ASSERT_EQ(r1.status, 0) << r1.output;
  EXPECT_EQ(slurp(p("out1.jsonl")), out);

  // Other thresholds from the attributes: no model needed, nothing recomputed.
  auto s = agpt::testing::run_agpt("data filter -i " + p("docs.jsonl") + " -o " + p("strict.jsonl") +
                                   " --from-attributes " + p("attrs") + " --config " + p("strict.toml") +
                                   " --report " + p("strict.json"));
  ASSERT_EQ(s.status, 0) << s.output;
  std::string strict = slurp(p("strict.json"));
  EXPECT_NE(strict.find("\"from_attributes\": true"), std::string::npos) << strict;
  EXPECT_NE(strict.find("\"length.min_words\": "), std::string::npos) << strict;
  EXPECT_EQ(slurp(p("strict.jsonl")).find("\"id\":\"tiny\""), std::string::npos);
  auto l = agpt::testing::run_agpt("data filter -i " + p("docs.jsonl") + " -o " + p("l.jsonl") +
                                   " --from-attributes " + p("attrs") + " --languages de --config " + p("filter.toml"));
  ASSERT_EQ(l.status, 0) << l.output;
  EXPECT_NE(slurp(p("l.jsonl")).find("\"id\":\"de\""), std::string::npos);
  EXPECT_EQ(slurp(p("l.jsonl")).find("\"id\":\"en\""), std::string::npos);

  // Held-out evaluation prints precision and recall.
  std::ofstream(p("held_en.txt")) << kEnglish[3] << "\n";
  std::ofstream(p("held_fr.txt")) << kFrench[3] << "\n";
  auto e = agpt::testing::run_agpt("data langid eval -m " + model + " -i en=" + p("held_en.txt") + " -i fr=" +
                                   p("held_fr.txt"));
  ASSERT_EQ(e.status, 0) << e.output;
  EXPECT_NE(e.output.find("accuracy: 100.00% of 2 texts"), std::string::npos) << e.output;
}

TEST_F(FilterCli, ClearErrors) {
  auto bad = agpt::testing::run_agpt("data filter -i " + p("docs.jsonl") + " -o " + p("o.jsonl") + " --config " +
                                     p("bad.toml"));
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("bad.toml:2"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("min_wrods"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(p("o.jsonl")));
  std::ofstream(p("corrupt.bin")) << "AGPTLID1 but then nothing useful";
  auto c = agpt::testing::run_agpt("data filter -i " + p("docs.jsonl") + " -o " + p("o.jsonl") +
                                   " --langid-model " + p("corrupt.bin") + " --languages en");
  EXPECT_NE(c.status, 0);
  EXPECT_NE(c.output.find("corrupt.bin: damaged language-identification model"), std::string::npos) << c.output;
  auto nomodel = agpt::testing::run_agpt("data filter -i " + p("docs.jsonl") + " -o " + p("o.jsonl") + " --languages en");
  EXPECT_NE(nomodel.status, 0);
  EXPECT_NE(nomodel.output.find("--langid-model"), std::string::npos) << nomodel.output;
  auto noattrs = agpt::testing::run_agpt("data filter -i " + p("docs.jsonl") + " -o " + p("o.jsonl") +
                                         " --from-attributes " + p("none"));
  EXPECT_NE(noattrs.status, 0);
  EXPECT_NE(noattrs.output.find("no such directory"), std::string::npos) << noattrs.output;
  auto lbl = agpt::testing::run_agpt("data langid train -i " + p("train/en.txt") + " -o " + p("m.bin"));
  EXPECT_NE(lbl.status, 0);
  EXPECT_NE(lbl.output.find("LANG=PATH"), std::string::npos) << lbl.output;
  // The example configs stay valid (every key known, every type right): filter-docs.toml is the main job's.
  for (const char* example : {"filter.toml", "filter-docs.toml"}) {
    auto ex = agpt::testing::run_agpt("data filter -i " + p("docs.jsonl") + " -o " + p("ex.jsonl") + " --config " +
                                      std::string(AGPT_SOURCE_DIR) + "/examples/" + example);
    EXPECT_EQ(ex.status, 0) << example << ": " << ex.output;
  }
  auto help = agpt::testing::run_agpt("data filter --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.output.find("Examples:"), std::string::npos);
}

// Interrupted after two of three input files (--stop-after), continued with --resume on another
// thread count: the same bytes as an uninterrupted run; a resume with another config is refused.
TEST_F(FilterCli, ResumesAnInterruptedRunByteForByte) {
  const std::string docs = slurp(dir_ / "docs.jsonl");
  auto cmd = [&](const std::string& out, const std::string& extra) {
    return "data filter -i " + p("many") + " -o " + p(out + "/kept.jsonl.zst") + " --removed " +
           p(out + "/removed.jsonl.gz") + " --attributes " + p(out + "/attrs") + " --config " + p("filter.toml") +
           " --report " + p(out + ".json") + " " + extra;
  };
  fs::create_directories(dir_ / "many");
  for (const char* name : {"a.jsonl", "b.jsonl", "c.jsonl"}) std::ofstream(dir_ / "many" / name) << docs;
  auto clean = agpt::testing::run_agpt(cmd("c", "-j 3"));
  ASSERT_EQ(clean.status, 0) << clean.output;
  auto stopped = agpt::testing::run_agpt(cmd("r", "-j 3 --stop-after 2"));
  EXPECT_NE(stopped.status, 0);
  EXPECT_NE(stopped.output.find("continue with --resume"), std::string::npos) << stopped.output;
  EXPECT_TRUE(fs::exists(p("r/kept.jsonl.zst.progress")));
  EXPECT_FALSE(fs::exists(p("r/kept.jsonl.zst")));
  std::string with_strict = cmd("r", "--resume");
  with_strict.replace(with_strict.find(p("filter.toml")), p("filter.toml").size(), p("strict.toml"));
  auto other = agpt::testing::run_agpt(with_strict);
  EXPECT_NE(other.status, 0);
  EXPECT_NE(other.output.find("the options differ"), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("config ("), std::string::npos) << other.output;
  auto resumed = agpt::testing::run_agpt(cmd("r", "-j 1 --resume"));
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed: 2 input files"), std::string::npos) << resumed.output;
  for (const char* f : {"kept.jsonl.zst", "removed.jsonl.gz", "attrs/a.jsonl.zst", "attrs/b.jsonl.zst",
                        "attrs/c.jsonl.zst"})
    EXPECT_TRUE(slurp(dir_ / "r" / f) == slurp(dir_ / "c" / f)) << f;
  EXPECT_FALSE(slurp(dir_ / "c" / "kept.jsonl.zst").empty());
  auto report = [&](const std::string& name) {
    std::string s = slurp(dir_ / (name + ".json"));
    s.erase(s.find("\"seconds\""));  // the last field
    for (size_t at; (at = s.find("/" + name + "/attrs")) != std::string::npos;) s.replace(at, name.size() + 2, "/X/");
    return s;
  };
  EXPECT_EQ(report("r"), report("c"));
}
