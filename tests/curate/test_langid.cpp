// Language identification: a small model trained here on a few sentences per language must label
// unseen sentences; the model file round-trips and damaged files are refused with clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "base/error.h"
#include "curate/langid.h"

using namespace agpt::curate;

namespace {

const std::vector<std::pair<std::string, std::vector<std::string>>>& training_text() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> t = {
      {"en",
       {"The quick brown fox jumps over the lazy dog while the children watch from the window.",
        "This manual page describes the options that the program accepts and what they do.",
        "If the file does not exist, it is created with the permissions of the current user.",
        "We would like to thank everyone who has contributed to the development of this software.",
        "There is nothing wrong with the weather today, although it might rain in the evening."}},
      {"fr",
       {"Le renard brun saute par-dessus le chien paresseux pendant que les enfants regardent.",
        "Cette page de manuel décrit les options que le programme accepte et ce qu'elles font.",
        "Si le fichier n'existe pas, il est créé avec les droits de l'utilisateur actuel.",
        "Nous voudrions remercier tous ceux qui ont contribué au développement de ce logiciel.",
        "Il fait très beau aujourd'hui, mais il pourrait pleuvoir ce soir dans la région."}},
      {"de",
       {"Der schnelle braune Fuchs springt über den faulen Hund, während die Kinder zusehen.",
        "Diese Handbuchseite beschreibt die Optionen, die das Programm akzeptiert und was sie tun.",
        "Wenn die Datei nicht existiert, wird sie mit den Rechten des aktuellen Benutzers erzeugt.",
        "Wir möchten allen danken, die zur Entwicklung dieser Software beigetragen haben.",
        "Das Wetter ist heute schön, aber am Abend könnte es regnen und kälter werden."}},
      {"es",
       {"El rápido zorro marrón salta sobre el perro perezoso mientras los niños miran.",
        "Esta página del manual describe las opciones que acepta el programa y lo que hacen.",
        "Si el fichero no existe, se crea con los permisos del usuario actual del sistema.",
        "Queremos agradecer a todos los que han contribuido al desarrollo de este programa.",
        "Hoy hace muy buen tiempo, aunque es posible que llueva por la noche en la ciudad."}},
      {"ja",
       {"素早い茶色の狐が怠け者の犬を飛び越え、子供たちが窓から見ています。",
        "このマニュアルページでは、プログラムが受け付けるオプションとその動作を説明します。",
        "ファイルが存在しない場合は、現在のユーザーの権限で作成されます。",
        "このソフトウェアの開発に貢献してくださったすべての方に感謝します。",
        "今日はとても良い天気ですが、夕方には雨が降るかもしれません。"}},
      {"zh",
       {"敏捷的棕色狐狸跳过了懒狗，孩子们在窗口看着。",
        "本手册页描述了程序接受的选项以及它们的作用。",
        "如果文件不存在，则以当前用户的权限创建该文件。",
        "我们要感谢所有为这个软件的开发做出贡献的人。",
        "今天天气很好，但是晚上可能会下雨，气温也会降低。"}},
  };
  return t;
}

LangIdModel small_model(LangIdOptions opt = {}) {
  opt.log2_buckets = 14;  // small and quick; collisions do not matter at this size
  std::vector<std::string> langs;
  for (const auto& [l, _] : training_text()) langs.push_back(l);
  LangIdTrainer trainer(opt, langs);
  for (size_t l = 0; l < training_text().size(); ++l)
    for (const auto& s : training_text()[l].second) trainer.add_text(static_cast<int>(l), s);
  return trainer.finish();
}

std::string label(const LangIdModel& m, std::string_view text) {
  auto [i, score] = m.best(text);
  return i < 0 ? "?" : m.languages()[static_cast<size_t>(i)];
}

}  // namespace

TEST(LangId, FeaturesIgnoreCaseDigitsAndPunctuation) {
  LangIdOptions opt;
  std::vector<uint32_t> a, b;
  langid_features("Hello, World! 123", opt, a);
  langid_features("hello world", opt, b);
  EXPECT_EQ(a, b);
  langid_features("ÉCOLE", opt, a);
  langid_features("école", opt, b);
  EXPECT_EQ(a, b);
  langid_features("1234 !!! ---", opt, a);
  EXPECT_TRUE(a.empty());
  langid_features("ab", opt, a);
  // " a b " : unigrams a, b; bigrams " a", "ab", "b "; trigrams " ab", "ab ", and "b " has no third.
  EXPECT_EQ(a.size(), 2u + 3u + 2u);
  for (uint32_t x : a) EXPECT_LT(x, 1u << opt.log2_buckets);
}

TEST(LangId, SmallModelLabelsUnseenSentences) {
  LangIdModel m = small_model();
  EXPECT_EQ(label(m, "The program writes the result to the standard output when the option is given."), "en");
  EXPECT_EQ(label(m, "Le programme écrit le résultat sur la sortie standard quand l'option est donnée."), "fr");
  EXPECT_EQ(label(m, "Das Programm schreibt das Ergebnis auf die Standardausgabe, wenn die Option gesetzt ist."),
            "de");
  EXPECT_EQ(label(m, "El programa escribe el resultado en la salida estándar cuando se da la opción."), "es");
  EXPECT_EQ(label(m, "プログラムは、オプションが指定されると結果を標準出力に書き込みます。"), "ja");
  EXPECT_EQ(label(m, "如果给出该选项，程序会将结果写入标准输出。"), "zh");
  std::vector<double> s;
  m.scores("The program writes the result.", s);
  double sum = 0;
  for (double v : s) sum += v;
  EXPECT_NEAR(sum, 1.0, 1e-9);
  m.scores("12345 ...", s);  // no letters: no evidence
  for (double v : s) EXPECT_NEAR(v, 1.0 / 6, 1e-12);
}

TEST(LangId, ModelFileRoundTrip) {
  LangIdModel m = small_model();
  const std::string bytes = m.serialize();
  LangIdModel r = LangIdModel::deserialize(bytes, "mem");
  EXPECT_EQ(r.languages(), m.languages());
  EXPECT_EQ(r.serialize(), bytes);
  std::vector<double> a, b;
  m.scores("Wir danken allen.", a);
  r.scores("Wir danken allen.", b);
  EXPECT_EQ(a, b);
  auto path = std::filesystem::temp_directory_path() / ("agpt_langid_" + std::to_string(::getpid()) + ".bin");
  m.save(path.string());
  LangIdModel f = LangIdModel::load(path.string());
  EXPECT_EQ(f.serialize(), bytes);
  std::filesystem::remove(path);
}

TEST(LangId, DamagedModelFilesAreRefusedClearly) {
  const std::string bytes = small_model().serialize();
  auto message = [](std::string_view b) {
    try {
      LangIdModel::deserialize(b, "model.bin");
    } catch (const agpt::Error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(message("not a model at all").find("not an agpt language-identification model"), std::string::npos);
  EXPECT_NE(message(bytes.substr(0, 20)).find("truncated"), std::string::npos);
  EXPECT_NE(message(bytes.substr(0, bytes.size() - 3)).find("truncated"), std::string::npos);
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  EXPECT_NE(message(flipped).find("checksum"), std::string::npos);
  std::string header = bytes;
  header[12] = 1;  // one language
  EXPECT_NE(message(header).find("damaged"), std::string::npos);
  EXPECT_NE(message(bytes + "x").find("unexpected bytes"), std::string::npos);
  EXPECT_NE(message(bytes.substr(0, 20)).find("model.bin"), std::string::npos);
  EXPECT_THROW(LangIdModel::load("/nonexistent/langid.bin"), agpt::Error);
}

TEST(LangId, TrainerChecksItsInput) {
  LangIdOptions opt;
  opt.log2_buckets = 12;
  EXPECT_THROW(LangIdTrainer(opt, {"en"}), agpt::Error);
  EXPECT_THROW(LangIdTrainer(opt, {"en", "en"}), agpt::Error);
  EXPECT_THROW(LangIdTrainer(opt, {"en", "French"}), agpt::Error);
  LangIdOptions bad = opt;
  bad.max_n = 9;
  EXPECT_THROW(LangIdTrainer(bad, {"en", "fr"}), agpt::Error);
  LangIdTrainer t(opt, {"en", "fr"});
  t.add_text(0, "some english text");
  try {
    t.finish();
    FAIL() << "a language without text must be an error";
  } catch (const agpt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'fr'"), std::string::npos);
  }
}

TEST(LangId, SnippetsAndEvaluation) {
  auto s = langid_snippets("aaaa\nbbbb\ncccc\ndd", 8);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0], "aaaa\nbbbb");
  EXPECT_EQ(s[1], "cccc\ndd");
  EXPECT_EQ(langid_snippets("whole text", 0).size(), 1u);
  std::string longline(100, 'x');
  auto cut = langid_snippets(longline, 10);  // pieces of 20 while more than 40 are left
  ASSERT_EQ(cut.size(), 4u);
  EXPECT_EQ(cut[0].size(), 20u);
  EXPECT_EQ(cut[3].size(), 40u);
  LangIdEvaluation ev;
  ev.languages = {"en", "fr"};
  ev.confusion = {{8, 2}, {1, 9}};
  EXPECT_EQ(ev.total(), 20u);
  EXPECT_EQ(ev.correct(), 17u);
  EXPECT_DOUBLE_EQ(ev.precision(0), 8.0 / 9);
  EXPECT_DOUBLE_EQ(ev.recall(0), 8.0 / 10);
  EXPECT_DOUBLE_EQ(ev.recall(1), 9.0 / 10);
  EXPECT_NE(ev.table().find("85.00%"), std::string::npos) << ev.table();
}
