// Reading and writing documents: round trips through plain/gz/zst, every kind of bad input with
// its file:line and reason in both error modes, and the accounting (nothing silently dropped).
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include <simdjson.h>

#include "corpus/json.h"
#include "corpus/lines.h"
#include "corpus/reader.h"
#include "corpus/writer.h"
#include "corpus_test_util.h"

using namespace agpt::corpus;
using namespace corpus_test;
using agpt::cat;

namespace {

std::vector<Document> tricky_documents() {
  std::vector<Document> docs;
  Document a;
  a.id = "doc-1";
  a.text = "quotes \" and 'single', backslash \\ and \\\\, slash /, newline\nline two\r\n\ttabbed";
  a.text += std::string("\x00\x01\x07\x08\x0b\x0c\x1b\x1f\x7f", 9);  // control characters and DEL
  a.text += " emoji \xF0\x9F\x98\x80 CJK \xE6\xBC\xA2\xE5\xAD\x97 line sep \xE2\x80\xA8 para sep \xE2\x80\xA9 end";
  a.source = "web/\"quoted\"";
  a.added = "2024-01-02T03:04:05.000Z";
  a.created = "2020-05-06";
  a.metadata_json = R"({"url":"https://example.com/?a=1&b=\"x\"","score":0.5,"big":123456789012345678901234567890,"nested":{"list":[1,2,{"k":null}],"t":true},"esc":"\u00e9\n"})";
  docs.push_back(a);
  Document b;  // only text
  b.text = "just text";
  docs.push_back(b);
  Document c;  // empty text is still a document
  c.id = "empty";
  docs.push_back(c);
  Document d;
  d.id = "\xE6\x96\x87\xE6\x9B\xB8-4";
  d.text = std::string(5000, 'x') + "\n\n" + std::string(300, '"');
  d.metadata_json = "{}";
  docs.push_back(d);
  return docs;
}

void expect_same(const Document& got, const Document& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.text, want.text);
  EXPECT_EQ(got.source, want.source);
  EXPECT_EQ(got.added, want.added);
  EXPECT_EQ(got.created, want.created);
  EXPECT_EQ(got.metadata_json, want.metadata_json);
}

// Writes one line per entry (plain), returns the path.
std::string write_lines(const TempDir& dir, const std::string& name, const std::vector<std::string>& lines,
                        bool final_newline = true) {
  std::string data;
  for (size_t i = 0; i < lines.size(); ++i) {
    data += lines[i];
    if (i + 1 < lines.size() || final_newline) data += "\n";
  }
  write_bytes(dir / name, data);
  return dir / name;
}

}  // namespace

class RoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(RoundTrip, TrickyTextAndMetadataSurvive) {
  TempDir dir;
  std::string path = dir / ("out.jsonl" + GetParam());
  auto docs = tricky_documents();
  {
    DocumentWriter w(path);
    for (const auto& d : docs) w.write(d);
    w.close();
  }
  auto r = read_all({path});
  ASSERT_EQ(r.docs.size(), docs.size()) << r.report.summary();
  for (size_t i = 0; i < docs.size(); ++i) {
    SCOPED_TRACE(i);
    expect_same(r.docs[i], docs[i]);
    EXPECT_EQ(r.docs[i].origin, path + ":" + std::to_string(i + 1));
  }
  EXPECT_EQ(r.report.skipped, 0u);
  EXPECT_EQ(r.report.files, 1u);
  // The file really is in the format its name says.
  LineReader lr(path);
  std::string_view line;
  ASSERT_TRUE(lr.next(line));
  Compression want = GetParam() == ".gz" ? Compression::kGzip : GetParam() == ".zst" ? Compression::kZstd : Compression::kNone;
  EXPECT_EQ(lr.compression(), want);
}

INSTANTIATE_TEST_SUITE_P(Formats, RoundTrip, ::testing::Values("", ".gz", ".zst"),
                         [](const auto& info) { return info.param.empty() ? std::string("plain") : info.param.substr(1); });

TEST(DocumentWriter, WritesCompactDolmaJson) {
  Document d;
  d.id = "a";
  d.text = "x\"y\\z\n\t\x01";
  d.metadata_json = "{\"k\": [1,\n 2]}\n";
  std::string out;
  append_document_json(out, d);
  EXPECT_EQ(out, R"({"id":"a","text":"x\"y\\z\n\t\u0001","metadata":{"k": [1,  2]}})");
  Document t;
  t.text = "";
  out.clear();
  append_document_json(out, t);
  EXPECT_EQ(out, R"({"text":""})");
  Document all;
  all.id = "i", all.text = "t", all.source = "s", all.added = "a", all.created = "c", all.metadata_json = "{}";
  out.clear();
  append_document_json(out, all);
  EXPECT_EQ(out, R"({"id":"i","text":"t","source":"s","added":"a","created":"c","metadata":{}})");
}

TEST(DocumentWriter, RefusesWhatWouldBeUnreadable) {
  TempDir dir;
  DocumentWriter w(dir / "x.jsonl");
  Document bad_utf8;
  bad_utf8.id = "d7";
  bad_utf8.text = "caf\xC3";
  EXPECT_NE(error_of([&] { w.write(bad_utf8); }).find("document id=d7: field \"text\" is not valid UTF-8"), std::string::npos);
  Document bad_meta;
  bad_meta.text = "t";
  bad_meta.metadata_json = "{\"a\": tru}";
  EXPECT_NE(error_of([&] { w.write(bad_meta); }).find("metadata_json is not valid JSON"), std::string::npos);
  bad_meta.metadata_json = "[1]";
  EXPECT_NE(error_of([&] { w.write(bad_meta); }).find("must be a JSON object"), std::string::npos);
  EXPECT_NE(error_of([&] { w.write_line("{}\n{}"); }).find("contains a newline"), std::string::npos);
  EXPECT_NE(error_of([&] { w.write_line("{}\r{}"); }).find("contains a carriage return"), std::string::npos);
  w.write_line(R"({"other":"jsonl"})");
  w.close();
  EXPECT_EQ(read_bytes(dir / "x.jsonl"), "{\"other\":\"jsonl\"}\n");  // the refused ones left nothing behind
}

TEST(DocumentWriter, IsAtomic) {
  TempDir dir;
  std::string path = dir / "sub/dir/out.jsonl.zst";  // parent directories are created
  Document d;
  d.text = "hello";
  {
    DocumentWriter w(path);
    for (int i = 0; i < 1000; ++i) w.write(d);
    EXPECT_FALSE(fs::exists(path));
    EXPECT_TRUE(fs::exists(path + ".tmp"));
    w.close();
    EXPECT_TRUE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    w.close();  // a second close is harmless
    EXPECT_NE(error_of([&] { w.write(d); }).find("write after close"), std::string::npos);
  }
  EXPECT_EQ(read_all({path}).docs.size(), 1000u);
  // Without close(): the old file stays as it was and the temporary file is removed.
  {
    DocumentWriter w(path);
    w.write(d);
  }
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(read_all({path}).docs.size(), 1000u);
}

TEST(DocumentWriter, RejectsBadZstdLevel) {
  TempDir dir;
  EXPECT_NE(error_of([&] { DocumentWriter w(dir / "a.jsonl.zst", 99); }).find("out of range"), std::string::npos);
}

TEST(DocumentReader, MetadataKeptAsRawText) {
  TempDir dir;
  auto path = write_lines(dir, "m.jsonl", {R"({"text":"a","metadata": {"x" : 1.50, "y":[ ], "z":"\u00e9"} })"});
  auto r = read_all({path});
  ASSERT_EQ(r.docs.size(), 1u);
  EXPECT_EQ(r.docs[0].metadata_json, R"({"x" : 1.50, "y":[ ], "z":"\u00e9"})");
}

TEST(DocumentReader, OtherTopLevelFieldsGoToMetadata) {
  TempDir dir;
  auto path = write_lines(dir, "x.jsonl",
                          {R"({"text":"a","url":"http://x","meta":{"k":[1,2]},"metadata":{"url":"old"},"n":-1.5e3,"f":false})",
                           R"({"url":"u","text":"b","n":null})",
                           R"({"text":"c","metadata":{ },"u\u0072l":1,"url_toplevel":2,"url":3})"});
  auto r = read_all({path});
  ASSERT_EQ(r.docs.size(), 3u);
  EXPECT_EQ(r.docs[0].metadata_json,
            R"({"url":"old","url_toplevel":"http://x","meta":{"k":[1,2]},"n":-1.5e3,"f":false})");
  EXPECT_EQ(r.docs[1].metadata_json, R"({"url":"u","n":null})");
  EXPECT_EQ(r.docs[2].metadata_json, R"({"url":1,"url_toplevel":2,"url_toplevel_toplevel":3})");
}

TEST(DocumentReader, IdsAndScalarFields) {
  TempDir dir;
  auto path = write_lines(dir, "ids.jsonl",
                          {R"({"id": 123, "text":"a"})", R"({"id":1.5e3,"text":"b","created":1690000000,"added":null})",
                           R"({"id":null,"text":"c","source":true})"});
  auto r = read_all({path});
  ASSERT_EQ(r.docs.size(), 3u);
  EXPECT_EQ(r.docs[0].id, "123");
  EXPECT_EQ(r.docs[1].id, "1.5e3");
  EXPECT_EQ(r.docs[1].created, "1690000000");
  EXPECT_EQ(r.docs[1].added, "");
  EXPECT_EQ(r.docs[2].id, "");
  EXPECT_EQ(r.docs[2].source, "true");
}

// Each bad line, its reason, and whether simdjson's or our own checks catch it.
struct BadLine {
  std::string line;
  std::string reason;
};

std::vector<BadLine> bad_lines() {
  return {
      {R"({"text": "abc")", reason::kInvalidJson},                 // cut off
      {R"(not json)", reason::kInvalidJson},
      {R"({"text": "abc", })", reason::kInvalidJson},
      {R"({"text" "abc"})", reason::kInvalidJson},
      {R"({"id":"x"})", reason::kMissingText},
      {R"({})", reason::kMissingText},
      {R"({"text": 5})", reason::kTextNotString},
      {R"({"text": null})", reason::kTextNotString},
      {R"({"text": ["a"]})", reason::kTextNotString},
      {"{\"text\":\"caf\xC3\"}", reason::kInvalidUtf8},            // invalid UTF-8 inside a string
      {"{\"text\":\"a\xED\xA0\x80z\"}", reason::kInvalidUtf8},     // an encoded surrogate
      {"{\"text\":\"ok\",\"metadata\":{\"k\":\"\xFF\"}}", reason::kInvalidUtf8},
      {R"([1,2])", reason::kNotObject},
      {R"("text")", reason::kNotObject},
      {R"(42)", reason::kNotObject},
      {R"({"text":"a","metadata":[1]})", reason::kMetadataNotObject},
      {R"({"text":"a","metadata":"x"})", reason::kMetadataNotObject},
      {R"({"text":"a","metadata":{"x":tru}})", reason::kInvalidJson},
      {R"({"text":"a","metadata":{"x":01}})", reason::kInvalidJson},
      {R"({"text":"a","x":[1 2]})", reason::kInvalidJson},
      {R"({"text":"a","x":{"a" 1}})", reason::kInvalidJson},
      {R"({"text":"a","x":1.})", reason::kInvalidJson},
      {R"({"text":"a"} trailing)", reason::kInvalidJson},
      {R"({"text":"a"}{"text":"b"})", reason::kInvalidJson},
      {R"({"text":"a","text":"b"})", reason::kDuplicateField},
      {R"({"text":"a","id":true})", reason::kBadId},
      {R"({"text":"a","id":{}})", reason::kBadId},
      {R"({"text":"a","added":{}})", reason::kFieldNotString},
      {"{\"text\":\"a\tb\"}", reason::kInvalidJson},               // raw control character in a string
      {R"({"text":"bad \q escape"})", reason::kInvalidJson},
      {R"({"text":"\ud800 lone surrogate"})", reason::kInvalidJson},
  };
}

TEST(DocumentReader, EveryBadLineIsCountedWithItsReasonAndPlace) {
  TempDir dir;
  auto bads = bad_lines();
  std::vector<std::string> lines = {R"({"id":"first","text":"ok"})"};
  for (const auto& b : bads) lines.push_back(b.line);
  lines.push_back("");
  lines.push_back("   \t");
  lines.push_back(R"({"id":"last","text":"no final newline"})");
  auto path = write_lines(dir, "bad.jsonl", lines, /*final_newline=*/false);
  auto r = read_all({path});
  ASSERT_EQ(r.docs.size(), 2u) << r.report.summary();
  EXPECT_EQ(r.docs[0].id, "first");
  EXPECT_EQ(r.docs[1].id, "last");
  EXPECT_EQ(r.docs[1].origin, path + ":" + std::to_string(lines.size()));
  EXPECT_EQ(r.report.lines, lines.size());
  EXPECT_EQ(r.report.blank_lines, 2u);
  EXPECT_EQ(r.report.skipped, bads.size());
  EXPECT_EQ(r.docs.size() + r.report.skipped, lines.size() - 2);  // every non-blank line accounted for
  std::map<std::string, uint64_t> want;
  for (const auto& b : bads) ++want[b.reason];
  EXPECT_EQ(r.report.skipped_by_reason, want) << r.report.summary();
  ASSERT_EQ(r.report.examples.size(), ReadReport::kMaxExamples);
  for (size_t i = 0; i < r.report.examples.size(); ++i)
    EXPECT_EQ(r.report.examples[i].rfind(cat(path, ":", i + 2, ": ", bads[i].reason, " ("), 0), 0u)
        << r.report.examples[i];
  std::string summary = r.report.summary();
  EXPECT_NE(summary.find(cat("skipped ", bads.size(), " lines:")), std::string::npos) << summary;
  EXPECT_NE(summary.find("invalid JSON"), std::string::npos);
}

TEST(DocumentReader, FailModeThrowsWithPlaceAndReason) {
  TempDir dir;
  auto bads = bad_lines();
  for (size_t i = 0; i < bads.size(); ++i) {
    SCOPED_TRACE(bads[i].line);
    auto path = write_lines(dir, "f" + std::to_string(i) + ".jsonl", {R"({"text":"ok"})", "", bads[i].line});
    DocumentReader reader({path}, OnError::kFail);
    Document doc;
    ASSERT_TRUE(reader.next(doc));
    std::string msg = error_of([&] { reader.next(doc); });
    EXPECT_EQ(msg.rfind(path + ":3: " + bads[i].reason + " (", 0), 0u) << msg;
    EXPECT_EQ(reader.report().skipped, 1u);
  }
}

TEST(DocumentReader, BlankLinesCrlfAndByteOrderMark) {
  TempDir dir;
  std::string data = "\xEF\xBB\xBF{\"text\":\"a\"}\r\n\r\n  \n\n{\"text\":\"b\"}\r\n";
  write_bytes(dir / "w.jsonl", data);
  auto r = read_all({dir / "w.jsonl"});
  ASSERT_EQ(r.docs.size(), 2u);
  EXPECT_EQ(r.docs[1].text, "b");
  EXPECT_EQ(r.docs[1].origin, dir / "w.jsonl" + ":5");
  EXPECT_EQ(r.report.blank_lines, 3u);
  EXPECT_EQ(r.report.bytes, data.size());
}

TEST(DocumentReader, EmptyFiles) {
  TempDir dir;
  write_bytes(dir / "a.jsonl", "");
  write_bytes(dir / "b.jsonl.zst", "");
  write_bytes(dir / "c.jsonl.gz", "");
  auto r = read_all({dir.str()});
  EXPECT_EQ(r.docs.size(), 0u);
  EXPECT_EQ(r.report.files, 3u);
  EXPECT_EQ(r.report.lines, 0u);
}

std::string numbered_docs(int n) {
  std::string data;
  for (int i = 0; i < n; ++i) {
    std::string line;
    Document d;
    d.id = std::to_string(i);
    d.text = "document number " + std::to_string(i) + " " + std::string(200 + (i * 37) % 300, 'a' + i % 26);
    append_document_json(line, d);
    data += line + "\n";
  }
  return data;
}

class Truncated : public ::testing::TestWithParam<std::string> {};

TEST_P(Truncated, CountsTheLostTailAndNamesTheLine) {
  TempDir dir;
  std::string ext = GetParam();
  std::string plain = numbered_docs(2000);
  std::string packed = ext == ".gz" ? gzip_member(plain) : zstd_frame(plain);
  std::string path = dir / ("t.jsonl" + ext);
  write_bytes(path, packed.substr(0, packed.size() / 2));
  auto r = read_all({path});
  EXPECT_GT(r.docs.size(), 100u);
  EXPECT_LT(r.docs.size(), 2000u);
  for (size_t i = 0; i < r.docs.size(); ++i) ASSERT_EQ(r.docs[i].id, std::to_string(i));
  EXPECT_EQ(r.report.skipped, 1u);
  EXPECT_EQ(r.report.skipped_by_reason.at(reason::kTruncated), 1u);
  std::string kind = ext == ".gz" ? "gzip" : "zstd";
  std::string want = cat(path, ": truncated ", kind, " stream after line ", r.docs.size(), " (");
  ASSERT_EQ(r.report.examples.size(), 1u);
  EXPECT_EQ(r.report.examples[0].rfind(want, 0), 0u) << r.report.examples[0];

  DocumentReader reader({path}, OnError::kFail);
  Document doc;
  size_t n = 0;
  std::string msg = error_of([&] {
    while (reader.next(doc)) ++n;
  });
  EXPECT_EQ(n, r.docs.size());
  EXPECT_EQ(msg.rfind(want, 0), 0u) << msg;

  // The same through LineReader directly.
  LineReader lr(path);
  std::string_view line;
  size_t lines = 0;
  msg = error_of([&] {
    while (lr.next(line)) ++lines;
  });
  EXPECT_EQ(lines, r.docs.size());
  EXPECT_EQ(msg.rfind(want, 0), 0u) << msg;
  EXPECT_FALSE(lr.next(line));  // stays at the end
}

TEST_P(Truncated, CutInTheHeaderOrAfterOneByte) {
  TempDir dir;
  std::string ext = GetParam();
  std::string plain = numbered_docs(10);
  std::string packed = ext == ".gz" ? gzip_member(plain) : zstd_frame(plain);
  for (size_t keep : {size_t{4}, size_t{6}, packed.size() - 1}) {
    SCOPED_TRACE(keep);
    std::string path = dir / ("h" + std::to_string(keep) + ".jsonl" + ext);
    write_bytes(path, packed.substr(0, keep));
    auto r = read_all({path});
    EXPECT_EQ(r.report.skipped, 1u) << r.report.summary();
    EXPECT_EQ(r.report.documents + r.report.skipped, r.report.lines);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, Truncated, ::testing::Values(".gz", ".zst"),
                         [](const auto& info) { return info.param.substr(1); });

TEST(DocumentReader, GarbageWithCompressedNames) {
  TempDir dir;
  write_bytes(dir / "g.jsonl.zst", "{\"text\":\"I am not compressed\"}\n");
  write_bytes(dir / "h.jsonl.gz", std::string("\x00\x01\x02\x03garbage", 11));
  write_bytes(dir / "i.jsonl.zst", "\x28\xb5\x2f\xfd" + std::string(100, '\x55'));  // zstd magic, junk after
  for (const char* name : {"g.jsonl.zst", "h.jsonl.gz", "i.jsonl.zst"}) {
    SCOPED_TRACE(name);
    auto r = read_all({dir / name});
    EXPECT_EQ(r.docs.size(), 0u);
    EXPECT_EQ(r.report.skipped, 1u);
    EXPECT_EQ(r.report.skipped_by_reason.count(reason::kCorrupt), 1u) << r.report.summary();
    EXPECT_EQ(r.report.examples.at(0).rfind(dir / name + ": ", 0), 0u) << r.report.examples.at(0);
    std::string msg = error_of([&] { read_all({dir / name}, OnError::kFail); });
    EXPECT_NE(msg.find(dir / name), std::string::npos);
  }
  EXPECT_NE(read_all({dir / "g.jsonl.zst"}).report.examples.at(0).find("not a zstd stream at the start"), std::string::npos);
}

TEST(DocumentReader, DamagedZstdDataIsReported) {
  TempDir dir;
  std::string packed = zstd_frame(numbered_docs(3000));
  packed[packed.size() / 2] ^= 0x5a;
  packed[packed.size() / 2 + 1] ^= 0xa5;
  write_bytes(dir / "d.jsonl.zst", packed);
  auto r = read_all({dir / "d.jsonl.zst"});
  EXPECT_GE(r.report.skipped, 1u);
  EXPECT_EQ(r.report.skipped_by_reason.count(reason::kCorrupt), 1u) << r.report.summary();
}

TEST(DocumentReader, GzipChecksumMismatchIsReported) {
  TempDir dir;
  std::string packed = gzip_member(numbered_docs(30));
  packed[packed.size() - 6] ^= 0x01;  // inside the CRC32 of the trailer
  write_bytes(dir / "crc.jsonl.gz", packed);
  auto r = read_all({dir / "crc.jsonl.gz"});
  EXPECT_EQ(r.docs.size(), 30u);  // the data came out before the check at the end failed
  ASSERT_EQ(r.report.skipped_by_reason.count(reason::kCorrupt), 1u) << r.report.summary();
  EXPECT_NE(r.report.examples.at(0).find("damaged gzip data after line 30 (incorrect data check"), std::string::npos)
      << r.report.examples.at(0);
}

TEST(DocumentReader, ConcatenatedGzipMembersAndZstdFrames) {
  TempDir dir;
  std::string a = numbered_docs(50), b = numbered_docs(70);
  write_bytes(dir / "m.jsonl.gz", gzip_member(a) + gzip_member(b, 1) + gzip_member(""));
  write_bytes(dir / "m.jsonl.zst", zstd_frame(a) + zstd_frame(b, 1));
  // A line split across the two members/frames is still one line.
  std::string c = numbered_docs(5);
  write_bytes(dir / "split.jsonl.gz", gzip_member(c.substr(0, 777)) + gzip_member(c.substr(777)));
  write_bytes(dir / "split.jsonl.zst", zstd_frame(c.substr(0, 777)) + zstd_frame(c.substr(777)));
  EXPECT_EQ(read_all({dir / "m.jsonl.gz"}).docs.size(), 120u);
  EXPECT_EQ(read_all({dir / "m.jsonl.zst"}).docs.size(), 120u);
  EXPECT_EQ(read_all({dir / "split.jsonl.gz"}).docs.size(), 5u);
  EXPECT_EQ(read_all({dir / "split.jsonl.zst"}).docs.size(), 5u);
}

TEST(DocumentReader, GzipPaddingAndTrailingGarbage) {
  TempDir dir;
  std::string a = numbered_docs(20);
  write_bytes(dir / "pad.jsonl.gz", gzip_member(a) + std::string(512, '\0'));
  auto r = read_all({dir / "pad.jsonl.gz"});
  EXPECT_EQ(r.docs.size(), 20u);
  EXPECT_EQ(r.report.skipped, 0u);
  write_bytes(dir / "junk.jsonl.gz", gzip_member(a) + "junk");
  r = read_all({dir / "junk.jsonl.gz"});
  EXPECT_EQ(r.docs.size(), 20u);
  EXPECT_EQ(r.report.skipped_by_reason.count(reason::kCorrupt), 1u) << r.report.summary();
}

TEST(DocumentReader, CompressionFoundByMagicWhateverTheName) {
  TempDir dir;
  write_bytes(dir / "really_gzip.jsonl", gzip_member(numbered_docs(3)));
  write_bytes(dir / "really_zstd.jsonl.gz", zstd_frame(numbered_docs(4)));
  EXPECT_EQ(read_all({dir / "really_gzip.jsonl"}).docs.size(), 3u);
  EXPECT_EQ(read_all({dir / "really_zstd.jsonl.gz"}).docs.size(), 4u);
}

TEST(DocumentReader, VeryLongLines) {
  TempDir dir;
  Document big;
  big.id = "big";
  std::string chunk = "Lorem ipsum \"dolor\" sit amet,\nconsectetur \xE6\xBC\xA2 adipiscing\t";
  while (big.text.size() < (size_t{9} << 20)) big.text += chunk;
  Document huge;
  huge.id = "huge";
  while (huge.text.size() < (size_t{20} << 20)) huge.text += chunk;
  huge.metadata_json = R"({"k":"v"})";
  Document small;
  small.text = "small";
  for (std::string ext : {"", ".zst"}) {
    std::string path = dir / ("big.jsonl" + ext);
    {
      DocumentWriter w(path);
      w.write(small);
      w.write(big);
      w.write(small);
      w.write(huge);
      w.write(small);
      w.close();
    }
    auto r = read_all({path});
    ASSERT_EQ(r.docs.size(), 5u);
    EXPECT_EQ(r.docs[1].text, big.text);
    EXPECT_TRUE(r.docs[3].text == huge.text);
    EXPECT_EQ(r.docs[3].metadata_json, huge.metadata_json);
    EXPECT_EQ(r.docs[4].text, "small");
  }
}

TEST(DocumentReader, TextFilesAreOneDocumentEach) {
  TempDir dir;
  write_bytes(dir / "docs/a.txt", "hello\nworld\n");
  write_bytes(dir / "docs/sub/b.md", "\xEF\xBB\xBF# Title\n\nbody \xE2\x9C\x93");
  write_bytes(dir / "docs/sub/c.rst.gz", gzip_member("compressed text"));
  write_bytes(dir / "docs/sub/d.txt", "latin-1 caf\xE9 is not UTF-8");
  write_bytes(dir / "docs/e.jsonl", "{\"text\":\"from jsonl\"}\n");
  write_bytes(dir / "docs/notes.bin", "ignored");
  auto r = read_all({dir / "docs"});
  ASSERT_EQ(r.docs.size(), 4u) << r.report.summary();
  EXPECT_EQ(r.docs[0].id, "a.txt");
  EXPECT_EQ(r.docs[0].text, "hello\nworld\n");
  EXPECT_EQ(r.docs[0].source, "file");
  EXPECT_EQ(r.docs[0].origin, dir / "docs/a.txt");
  EXPECT_EQ(r.docs[1].text, "from jsonl");
  EXPECT_EQ(r.docs[2].id, "sub/b.md");
  EXPECT_EQ(r.docs[2].text, "# Title\n\nbody \xE2\x9C\x93");
  EXPECT_EQ(r.docs[3].id, "sub/c.rst.gz");
  EXPECT_EQ(r.docs[3].text, "compressed text");
  EXPECT_EQ(r.report.skipped_by_reason.at(reason::kInvalidUtf8), 1u);
  EXPECT_NE(r.report.examples.at(0).find("d.txt: invalid UTF-8 (bad byte sequence at byte 11"), std::string::npos)
      << r.report.examples.at(0);
  EXPECT_EQ(r.report.lines, 5u);
  // A text file given directly keeps its path as the id.
  auto one = read_all({dir / "docs/a.txt"});
  ASSERT_EQ(one.docs.size(), 1u);
  EXPECT_EQ(one.docs[0].id, dir / "docs/a.txt");
  std::string msg = error_of([&] { read_all({dir / "docs/sub/d.txt"}, OnError::kFail); });
  EXPECT_EQ(msg.rfind(dir / "docs/sub/d.txt: invalid UTF-8", 0), 0u) << msg;
}

TEST(DocumentReader, ManyFilesInOrderWithProgress) {
  TempDir dir;
  write_bytes(dir / "b.jsonl", numbered_docs(3));
  write_bytes(dir / "a.jsonl.gz", gzip_member(numbered_docs(2)));
  write_bytes(dir / "c.jsonl.zst", zstd_frame(numbered_docs(4)));
  DocumentReader reader({dir.str()}, OnError::kSkip);
  ASSERT_EQ(reader.files().size(), 3u);
  EXPECT_EQ(reader.files()[0], dir / "a.jsonl.gz");
  EXPECT_EQ(reader.bytes_read_compressed(), 0u);
  Document doc;
  std::vector<std::string> origins;
  while (reader.next(doc)) origins.push_back(doc.origin);
  ASSERT_EQ(origins.size(), 9u);
  EXPECT_EQ(origins[0], dir / "a.jsonl.gz:1");
  EXPECT_EQ(origins[2], dir / "b.jsonl:1");
  EXPECT_EQ(origins[8], dir / "c.jsonl.zst:4");
  EXPECT_EQ(reader.bytes_read_compressed(), reader.bytes_total_compressed());
  EXPECT_EQ(reader.report().bytes, numbered_docs(2).size() + numbered_docs(3).size() + numbered_docs(4).size());
  EXPECT_EQ(reader.report().files, 3u);
  EXPECT_FALSE(reader.next(doc));
}

TEST(DocumentReader, NoInputs) {
  EXPECT_NE(error_of([] { DocumentReader r({}, OnError::kSkip); }).find("no input files"), std::string::npos);
}

TEST(DocumentParser, ParsesAStringView) {
  DocumentParser p;
  Document d;
  std::string reason, detail;
  std::string line = R"(  {"text":"hi","id":7}  )";
  ASSERT_TRUE(p.parse(std::string_view(line).substr(0, 22), d, reason, detail)) << detail;
  EXPECT_EQ(d.text, "hi");
  EXPECT_EQ(d.id, "7");
  EXPECT_FALSE(p.parse(R"({"id":7})", d, reason, detail));
  EXPECT_EQ(reason, reason::kMissingText);
  EXPECT_FALSE(p.parse("", d, reason, detail));
  EXPECT_EQ(reason, reason::kInvalidJson);
}

// Random mutations of valid lines: each either parses or is skipped with a reason, never crashes;
// whatever parses writes back to a line that parses to the same document; and the JSON checker
// agrees with simdjson's fully validating DOM parser on what is valid JSON.
TEST(DocumentParser, SurvivesMutationsAndAgreesWithSimdjson) {
  std::mt19937 rng(12345);
  std::vector<std::string> seeds = {
      R"({"id":"a","text":"hello \"world\"\n","source":"s","metadata":{"k":[1,2.5e3,{"x":null}],"b":true}})",
      R"({"text":"\u00e9\ud83d\ude00 caf\u00e9","url":"http://x","n":-0.5,"a":[[],{}]})",
      "{\"id\":12,\"text\":\"\xE6\xBC\xA2\xE5\xAD\x97\",\"added\":\"2024\",\"created\":false}",
  };
  const std::string alphabet = "{}[]\":,\\ntu0123456789.eE+-\x01\x80\xC3\xFF ";
  DocumentParser p, p2;
  Document d, d2;
  std::string reason, detail;
  simdjson::dom::parser dom;
  int parsed = 0, skipped = 0, compared = 0;
  for (int iter = 0; iter < 30000; ++iter) {
    std::string s = seeds[iter % seeds.size()];
    int edits = 1 + rng() % 4;
    for (int e = 0; e < edits && !s.empty(); ++e) {
      size_t pos = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[pos] = alphabet[rng() % alphabet.size()]; break;
        case 1: s.erase(pos, 1 + rng() % 3); break;
        default: s.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
      }
    }
    bool ok = p.parse(s, d, reason, detail);
    if (ok) {
      ++parsed;
      std::string line;
      ASSERT_NO_THROW(append_document_json(line, d)) << s;
      ASSERT_TRUE(p2.parse(line, d2, reason, detail)) << s << "\n" << line << "\n" << detail;
      ASSERT_EQ(d2.text, d.text);
      ASSERT_EQ(d2.id, d.id);
      ASSERT_EQ(d2.metadata_json, d.metadata_json);
    } else {
      ++skipped;
      ASSERT_FALSE(reason.empty());
      ASSERT_FALSE(detail.empty());
    }
    bool ours = is_valid_utf8(s) && json_syntax_error(s).empty();
    simdjson::padded_string padded(s);
    simdjson::dom::element root;
    auto err = dom.parse(padded).get(root);
    if (err == simdjson::NUMBER_ERROR) continue;  // numbers beyond double
    if (err == simdjson::STRING_ERROR && ours) continue;  // lone \u surrogates: valid JSON text, no UTF-8 form
    ASSERT_EQ(ours, err == simdjson::SUCCESS) << s << "\nsimdjson: " << simdjson::error_message(err);
    if (ok) {
      ASSERT_TRUE(ours) << s;
    }
    ++compared;
  }
  EXPECT_GT(parsed, 100);
  EXPECT_GT(skipped, 100);
  EXPECT_GT(compared, 25000);
}

TEST(LineReader, LinesNumbersAndBuffersGrowing) {
  TempDir dir;
  std::string data;
  std::vector<std::string> want;
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    std::string l(rng() % 3 == 0 ? rng() % 40000 : rng() % 50, 'a' + i % 26);
    want.push_back(l);
    data += l + "\n";
  }
  want.push_back(std::string(3 << 20, 'z'));  // bigger than the initial buffer, no final newline
  data += want.back();
  for (std::string ext : {"", ".gz", ".zst"}) {
    std::string path = dir / ("l.txt" + ext);
    write_bytes(path, ext == ".gz" ? gzip_member(data) : ext == ".zst" ? zstd_frame(data) : data);
    LineReader lr(path);
    std::string_view line;
    size_t i = 0;
    while (lr.next(line)) {
      ASSERT_LT(i, want.size());
      ASSERT_EQ(line, want[i]) << i;
      ++i;
      ASSERT_EQ(lr.line_number(), i);
    }
    EXPECT_EQ(i, want.size());
    EXPECT_EQ(lr.bytes_consumed(), data.size());
  }
}

TEST(LineWriter, RoundTripsRawLines) {
  TempDir dir;
  for (std::string ext : {"", ".gz", ".zst"}) {
    std::string path = dir / ("ids.txt" + ext);
    {
      LineWriter w(path, 19);
      for (int i = 0; i < 100000; ++i) w.write_line(std::to_string(i));
      w.write("tail\n");
      w.close();
      EXPECT_EQ(w.lines_written(), 100000u);
    }
    LineReader lr(path);
    std::string_view line;
    int i = 0;
    while (lr.next(line) && i < 100000) ASSERT_EQ(line, std::to_string(i++));
    EXPECT_EQ(line, "tail");
    EXPECT_FALSE(lr.next(line));
  }
}

TEST(LineReader, MissingFileAndDirectory) {
  TempDir dir;
  EXPECT_NE(error_of([&] { LineReader lr(dir / "nope.jsonl"); }).find("nope.jsonl: cannot open for reading"), std::string::npos);
  EXPECT_NE(error_of([&] { LineReader lr(dir.str()); }).find("is a directory"), std::string::npos);
}
