// Input expansion (files, directories, globs) and the small JSON helpers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "corpus/inputs.h"
#include "corpus/json.h"
#include "corpus_test_util.h"

using namespace agpt::corpus;
using namespace corpus_test;
using agpt::cat;

TEST(ExpandInputs, DirectoriesRecursiveSortedKnownTypesOnly) {
  TempDir dir;
  for (const char* f : {"d/b.jsonl", "d/a/z.jsonl.gz", "d/a/c/d.json.zst", "d/e.txt", "d/F.JSONL", "d/x.bin",
                        "d/readme", "d/out.jsonl.tmp"})
    write_bytes(dir / f, "");
  auto files = expand_input_files({dir / "d"});
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"F.JSONL", "a/c/d.json.zst", "a/z.jsonl.gz", "b.jsonl", "e.txt"}));
  EXPECT_EQ(files[0].path, dir / "d/F.JSONL");
  EXPECT_EQ(files[4].kind, InputKind::kText);
  EXPECT_EQ(files[3].kind, InputKind::kJsonl);
  // A trailing slash or "./" gives the same files.
  EXPECT_EQ(expand_inputs({dir / "d/"}), expand_inputs({dir / "d/./"}));
}

TEST(ExpandInputs, SpecsKeepTheirOrderAndFilesAreReadOnce) {
  TempDir dir;
  write_bytes(dir / "b.jsonl", "");
  write_bytes(dir / "a.jsonl", "");
  auto paths = expand_inputs({dir / "b.jsonl", dir / "a.jsonl", dir.str(), dir / "./b.jsonl"});
  EXPECT_EQ(paths, (std::vector<std::string>{dir / "b.jsonl", dir / "a.jsonl"}));
}

TEST(ExpandInputs, Globs) {
  TempDir dir;
  for (const char* f : {"g/s2.jsonl", "g/s10.jsonl", "g/s1.jsonl.zst", "g/t.txt", "g/sub/s3.jsonl", "g/notes.csv"})
    write_bytes(dir / f, "");
  EXPECT_EQ(expand_inputs({dir / "g/s*.jsonl*"}),
            (std::vector<std::string>{dir / "g/s1.jsonl.zst", dir / "g/s10.jsonl", dir / "g/s2.jsonl"}));
  // Directories matched by a pattern are expanded; other types are ignored.
  EXPECT_EQ(expand_inputs({dir / "g/*"}),
            (std::vector<std::string>{dir / "g/s1.jsonl.zst", dir / "g/s10.jsonl", dir / "g/s2.jsonl",
                                      dir / "g/sub/s3.jsonl", dir / "g/t.txt"}));
  EXPECT_EQ(expand_inputs({dir / "g/s?.jsonl"}), (std::vector<std::string>{dir / "g/s2.jsonl"}));
}

TEST(ExpandInputs, ClearErrors) {
  TempDir dir;
  write_bytes(dir / "data.parquet", "");
  write_bytes(dir / "data.jsonl.bz2", "");
  write_bytes(dir / "only/other.bin", "");
  write_bytes(dir / "o.csv", "");
  auto has = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
  };
  has(error_of([&] { expand_inputs({dir / "missing.jsonl"}); }), "missing.jsonl: no such file or directory");
  has(error_of([&] { expand_inputs({dir / "*.nomatch"}); }), "*.nomatch: the pattern matches no files");
  has(error_of([&] { expand_inputs({dir / "o.*"}); }), "matches 1 paths but no input files");
  has(error_of([&] { expand_inputs({dir / "data.parquet"}); }), "data.parquet: unknown input type");
  has(error_of([&] { expand_inputs({dir / "data.jsonl.bz2"}); }), ".bz2 files are not supported");
  has(error_of([&] { expand_inputs({dir / "only"}); }), "only: the directory holds no input files");
  has(error_of([&] { expand_inputs({""}); }), "empty");
}

TEST(InputKind, ByName) {
  EXPECT_EQ(input_kind("a.jsonl"), InputKind::kJsonl);
  EXPECT_EQ(input_kind("a.ndjson.zstd"), InputKind::kJsonl);
  EXPECT_EQ(input_kind("a.json.gz"), InputKind::kJsonl);
  EXPECT_EQ(input_kind("A.TXT.GZ"), InputKind::kText);
  EXPECT_EQ(input_kind("a.md"), InputKind::kText);
  EXPECT_EQ(input_kind("a.jsonl.tmp"), std::nullopt);
  EXPECT_EQ(input_kind("a.gz"), std::nullopt);
}

TEST(Json, AppendStringEscapes) {
  std::string out;
  append_json_string(out, std::string("a\"b\\c/\n\r\t\b\f\x01\x1f\x7f\x00z", 16));
  EXPECT_EQ(out, "\"a\\\"b\\\\c/\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\\u0000z\"");
  out.clear();
  append_json_string(out, "\xE2\x80\xA8 \xF0\x9F\x98\x80");
  EXPECT_EQ(out, "\"\xE2\x80\xA8 \xF0\x9F\x98\x80\"");
}

TEST(Json, SyntaxCheck) {
  for (const char* ok : {"{}", " { \"a\" : [1, -2.5e+10, 0, true, false, null, \"\\u00e9\\n\"] } ", "[]", "\"s\"",
                         "123456789012345678901234567890", "-0.0e-0", "[[[[]]]]"})
    EXPECT_EQ(json_syntax_error(ok), "") << ok;
  for (const char* bad : {"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[1 2]", "01", "1.", ".5", "-",
                          "tru", "nul", "\"abc", "\"a\\x\"", "\"\\u12\"", "{} {}", "{a:1}", "'s'", "+1", "\"a\tb\""})
    EXPECT_NE(json_syntax_error(bad), "") << bad;
  EXPECT_NE(json_syntax_error(std::string(2000, '[') + std::string(2000, ']')).find("nested too deeply"),
            std::string::npos);
  std::vector<std::string_view> keys;
  EXPECT_EQ(json_syntax_error(R"({"a":{"b":1},"c\"d":[{"e":2}]})", &keys), "");
  EXPECT_EQ(keys, (std::vector<std::string_view>{"a", "c\\\"d"}));
  EXPECT_NE(json_syntax_error("[1, x]").find("at byte 4"), std::string::npos);
}

TEST(Json, Utf8) {
  EXPECT_TRUE(is_valid_utf8("plain \xE6\xBC\xA2 \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("caf\xE9"));
  EXPECT_EQ(first_invalid_utf8("caf\xE9!"), 3u);
  EXPECT_EQ(first_invalid_utf8("a\xED\xA0\x80"), 1u);   // surrogate
  EXPECT_EQ(first_invalid_utf8("a\xC0\xAF"), 1u);       // overlong
  EXPECT_EQ(first_invalid_utf8("a\xF4\x90\x80\x80"), 1u);  // above U+10FFFF
  EXPECT_EQ(first_invalid_utf8("ok"), 2u);
}

TEST(Json, Unescape) {
  std::string out;
  ASSERT_TRUE(unescape_json_string(R"(a\"b\\\/\n\u00e9\ud83d\ude00)", out));
  EXPECT_EQ(out, "a\"b\\/\n\xC3\xA9\xF0\x9F\x98\x80");
  ASSERT_TRUE(unescape_json_string(R"(\ud800x)", out));
  EXPECT_EQ(out, "\xEF\xBF\xBDx");
  EXPECT_FALSE(unescape_json_string(R"(\x)", out));
  EXPECT_FALSE(unescape_json_string(R"(\u12)", out));
}

TEST(Json, CursorDecodesAndKeepsRawText) {
  std::string_view text = R"( {"a\tb" : "x\"y\u00e9\ud83d\ude00", "n": [1, {"k": null}] } )";
  JsonCursor c(text);
  c.skip_ws();
  ASSERT_TRUE(c.consume('{'));
  std::string key, value;
  ASSERT_TRUE(c.read_string(key));
  EXPECT_EQ(key, "a\tb");
  c.skip_ws();
  ASSERT_TRUE(c.consume(':'));
  c.skip_ws();
  ASSERT_TRUE(c.read_string(value));
  EXPECT_EQ(value, "x\"y\xC3\xA9\xF0\x9F\x98\x80");
  c.skip_ws();
  ASSERT_TRUE(c.consume(','));
  c.skip_ws();
  ASSERT_TRUE(c.read_string(key));
  c.skip_ws();
  ASSERT_TRUE(c.consume(':'));
  c.skip_ws();
  size_t start = c.pos();
  ASSERT_TRUE(c.skip_value());
  EXPECT_EQ(text.substr(start, c.pos() - start), R"([1, {"k": null}])");
  // A lone surrogate is valid JSON to skip, but cannot be decoded to UTF-8.
  JsonCursor lone(R"("\udc00")");
  EXPECT_TRUE(lone.skip_value());
  JsonCursor lone2(R"("ab\ud800")");
  EXPECT_FALSE(lone2.read_string(value));
  EXPECT_NE(lone2.error().find("lone surrogate"), std::string::npos);
  // Strings longer than the 16-byte steps, with specials at every position.
  for (size_t at = 0; at < 40; ++at) {
    std::string s(40, 'a');
    s[at] = '\x01';
    std::string quoted = "\"" + s + "\"";
    JsonCursor ctl(quoted);
    EXPECT_FALSE(ctl.skip_value()) << at;
    EXPECT_EQ(ctl.error(), cat("unescaped control character in string at byte ", at + 1));
    s[at] = '"';
    quoted = "\"" + s + "\"";
    JsonCursor q(quoted);
    EXPECT_TRUE(q.skip_value());
    EXPECT_EQ(q.pos(), at + 2);
  }
}
