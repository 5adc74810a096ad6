// The language-identification model file, little-endian:
//
//   8 bytes  magic "AGPTLID1"
//   u32      format version (1)
//   u32      L, the number of languages (2..255)
//   u32      log2 of the number of buckets B (12..24)
//   u32      min_n, u32 max_n (1 <= min_n <= max_n <= 5)
//   u32      max_chars (characters of a text looked at; 0: all)
//   f64      alpha (the smoothing used in training; informative)
//   L times  u8 length, then the language code (see check_language_code)
//   B*L f32  log-probabilities, bucket-major ([bucket][language]); finite and <= 0
//   u64      XXH64 (seed 0) of every byte before it
//
// A checksum rather than trust: a model is a binary blob that may be truncated by a copy or
// damaged on disk, and a damaged model would silently mislabel documents.
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/file.h"
#include "curate/hash.h"
#include "curate/langid.h"

namespace agpt::curate {
namespace {

constexpr char kMagic[8] = {'A', 'G', 'P', 'T', 'L', 'I', 'D', '1'};
constexpr uint32_t kVersion = 1;

template <typename T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

class Reader {
 public:
  Reader(std::string_view bytes, const std::string& label) : b_(bytes), label_(label) {}
  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view take(size_t n, const char* what) {
    need(n, what);
    auto v = b_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  size_t pos() const { return pos_; }

 private:
  void need(size_t n, const char* what) {
    if (b_.size() - pos_ < n)
      fail(label_, ": truncated language-identification model (ends inside the ", what, " at byte ", pos_,
           "; the file has ", b_.size(), " bytes): train it again with `agpt data langid train`");
  }
  std::string_view b_;
  const std::string& label_;
  size_t pos_ = 0;
};

}  // namespace

std::string LangIdModel::serialize() const {
  std::string out;
  out.append(kMagic, 8);
  put<uint32_t>(out, kVersion);
  put<uint32_t>(out, static_cast<uint32_t>(languages_.size()));
  put<uint32_t>(out, static_cast<uint32_t>(opt_.log2_buckets));
  put<uint32_t>(out, static_cast<uint32_t>(opt_.min_n));
  put<uint32_t>(out, static_cast<uint32_t>(opt_.max_n));
  put<uint32_t>(out, opt_.max_chars);
  put<double>(out, opt_.alpha);
  for (const auto& l : languages_) {
    put<uint8_t>(out, static_cast<uint8_t>(l.size()));
    out += l;
  }
  out.append(reinterpret_cast<const char*>(logp_.data()), logp_.size() * sizeof(float));
  put<uint64_t>(out, xxh64(out, 0));
  return out;
}

void LangIdModel::save(const std::string& path) const { write_file_atomic(path, serialize()); }

LangIdModel LangIdModel::deserialize(std::string_view bytes, const std::string& label) {
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kMagic, 8) != 0)
    fail(label, ": not an agpt language-identification model (it does not start with \"AGPTLID1\"); make one with "
         "`agpt data langid train` or scripts/make-langid-model.sh");
  Reader r(bytes, label);
  r.take(8, "magic");
  const auto version = r.get<uint32_t>("header");
  if (version != kVersion && version < 100)
    fail(label, ": language-identification model format version ", version, " is not supported (this agpt reads ",
         kVersion, "); train the model again with this agpt");
  if (version != kVersion)
    fail(label, ": damaged language-identification model (format version field reads ", version,
         "): copy or train it again");
  const auto L = r.get<uint32_t>("header");
  const auto log2b = r.get<uint32_t>("header");
  const auto min_n = r.get<uint32_t>("header");
  const auto max_n = r.get<uint32_t>("header");
  const auto max_chars = r.get<uint32_t>("header");
  const auto alpha = r.get<double>("header");
  if (L < 2 || L > 255 || log2b < 12 || log2b > 24 || min_n < 1 || max_n > 5 || min_n > max_n)
    fail(label, ": damaged language-identification model header (", L, " languages, 2^", log2b, " buckets, n-grams ",
         min_n, "..", max_n, "): train it again");
  LangIdModel m;
  m.opt_.log2_buckets = static_cast<int>(log2b);
  m.opt_.min_n = static_cast<int>(min_n);
  m.opt_.max_n = static_cast<int>(max_n);
  m.opt_.max_chars = max_chars;
  m.opt_.alpha = alpha;
  for (uint32_t l = 0; l < L; ++l) {
    const auto len = r.get<uint8_t>("language codes");
    std::string code(r.take(len, "language codes"));
    check_language_code(code, label);
    m.languages_.push_back(std::move(code));
  }
  const size_t cells = (size_t{1} << log2b) * L;
  std::string_view table = r.take(cells * sizeof(float), "probability table");
  const size_t body = r.pos();
  const auto sum = r.get<uint64_t>("checksum");
  if (r.pos() != bytes.size())
    fail(label, ": ", bytes.size() - r.pos(), " unexpected bytes after the end of the language-identification model");
  if (sum != xxh64(bytes.substr(0, body), 0))
    fail(label, ": language-identification model is damaged (checksum mismatch): copy or train it again");
  m.logp_.resize(cells);
  std::memcpy(m.logp_.data(), table.data(), table.size());
  for (float v : m.logp_)
    if (!std::isfinite(v) || v > 0) fail(label, ": language-identification model holds invalid probabilities");
  return m;
}

LangIdModel LangIdModel::load(const std::string& path) { return deserialize(read_file(path), path); }

}  // namespace agpt::curate
