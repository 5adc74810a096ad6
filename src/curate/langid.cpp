#include "curate/langid.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include "base/error.h"
#include "curate/hash.h"
#include "text/unicode_class.h"

namespace agpt::curate {

void langid_features(std::string_view text, const LangIdOptions& opt, std::vector<uint32_t>& out) {
  out.clear();
  const auto& uc = text::UnicodeClasses::get();
  thread_local std::vector<uint32_t> cps;
  cps.clear();
  cps.push_back(' ');
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  const size_t limit = opt.max_chars ? opt.max_chars : SIZE_MAX;
  size_t seen = 0;
  for (size_t i = 0; i < n && seen < limit; ++seen) {
    uint32_t cp;
    i += text::decode_utf8(p + i, n - i, cp);
    const bool letter = cp != text::kInvalidCodePoint && (uc.of(cp) & (text::kClsLetter | text::kClsMark));
    if (!letter) {
      if (cps.back() != ' ') cps.push_back(' ');
      continue;
    }
    cps.push_back(cp < 0x80 ? (cp >= 'A' && cp <= 'Z' ? cp + 32 : cp)
                            : static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
  }
  if (cps.size() == 1) return;  // no letter at all
  if (cps.back() != ' ') cps.push_back(' ');
  const int shift = 64 - opt.log2_buckets;
  const size_t m = cps.size();
  out.reserve(m * static_cast<size_t>(opt.max_n - opt.min_n + 1));
  for (size_t i = 0; i < m; ++i) {
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (int k = 0; k < opt.max_n && i + k < m; ++k) {
      h = mix64(h + cps[i + k] + 1);
      if (k + 1 < opt.min_n) continue;
      if (k == 0 && cps[i] == ' ') continue;  // a lone space says nothing
      out.push_back(static_cast<uint32_t>(h >> shift));
    }
  }
}

int LangIdModel::language_index(std::string_view lang) const {
  for (size_t i = 0; i < languages_.size(); ++i)
    if (languages_[i] == lang) return static_cast<int>(i);
  return -1;
}

void LangIdModel::scores_of(const std::vector<uint32_t>& features, std::vector<double>& out) const {
  const size_t L = languages_.size();
  out.assign(L, 0.0);
  if (L == 0) return;
  if (features.empty()) {
    out.assign(L, 1.0 / static_cast<double>(L));
    return;
  }
  // Sums in float per feature row would lose precision on long texts; accumulate in double.
  for (uint32_t b : features) {
    const float* row = &logp_[static_cast<size_t>(b) * L];
    for (size_t l = 0; l < L; ++l) out[l] += row[l];
  }
  const double mx = *std::max_element(out.begin(), out.end());
  double sum = 0;
  for (double& v : out) sum += (v = std::exp(v - mx));
  for (double& v : out) v /= sum;
}

void LangIdModel::scores(std::string_view text, std::vector<double>& out) const {
  thread_local std::vector<uint32_t> features;
  langid_features(text, opt_, features);
  scores_of(features, out);
}

std::pair<int, double> LangIdModel::best(std::string_view text) const {
  thread_local std::vector<double> s;
  scores(text, s);
  if (s.empty()) return {-1, 0.0};
  size_t b = static_cast<size_t>(std::max_element(s.begin(), s.end()) - s.begin());
  return {static_cast<int>(b), s[b]};
}

void check_language_code(std::string_view code, const std::string& where) {
  bool ok = !code.empty() && code.size() <= 32;
  for (char c : code) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
  if (!ok)
    fail(where, ": language code '", code,
         "' is not valid: use 1 to 32 lowercase letters, digits, '_' or '-' (e.g. en, ja, zh, pt-br)");
}

LangIdTrainer::LangIdTrainer(const LangIdOptions& opt, std::vector<std::string> languages)
    : opt_(opt), languages_(std::move(languages)) {
  if (opt.min_n < 1 || opt.max_n > 5 || opt.min_n > opt.max_n)
    fail("langid: n-gram sizes must satisfy 1 <= min <= max <= 5 (got ", opt.min_n, "..", opt.max_n, ")");
  if (opt.log2_buckets < 12 || opt.log2_buckets > 24)
    fail("langid: log2 buckets must be within 12..24 (got ", opt.log2_buckets, ")");
  if (!(opt.alpha > 0) || !std::isfinite(opt.alpha)) fail("langid: smoothing alpha must be > 0 (got ", opt.alpha, ")");
  if (languages_.size() < 2 || languages_.size() > 255)
    fail("langid: training needs 2 to 255 languages (got ", languages_.size(), ")");
  for (size_t i = 0; i < languages_.size(); ++i) {
    check_language_code(languages_[i], "langid train");
    for (size_t j = 0; j < i; ++j)
      if (languages_[i] == languages_[j]) fail("langid train: language '", languages_[i], "' given twice");
  }
  counts_.assign((size_t{1} << opt.log2_buckets) * languages_.size(), 0);
  totals_.assign(languages_.size(), 0);
  texts_.assign(languages_.size(), 0);
}

void LangIdTrainer::add(int lang, const std::vector<uint32_t>& features) {
  const size_t L = languages_.size();
  if (lang < 0 || static_cast<size_t>(lang) >= L) fail("langid: language index ", lang, " out of range");
  for (uint32_t b : features) {
    uint32_t& c = counts_[static_cast<size_t>(b) * L + lang];
    if (c != UINT32_MAX) ++c;  // saturate: 4 billion of one n-gram is plenty
  }
  totals_[lang] += features.size();
  ++texts_[lang];
}

void LangIdTrainer::add_text(int lang, std::string_view text) {
  std::vector<uint32_t> f;
  langid_features(text, opt_, f);
  add(lang, f);
}

LangIdModel LangIdTrainer::finish() const {
  const size_t L = languages_.size();
  const size_t B = size_t{1} << opt_.log2_buckets;
  for (size_t l = 0; l < L; ++l)
    if (totals_[l] == 0)
      fail("langid train: no text with letters for language '", languages_[l],
           "': check its input (it must hold documents with text)");
  LangIdModel m;
  m.opt_ = opt_;
  m.languages_ = languages_;
  m.logp_.resize(B * L);
  for (size_t l = 0; l < L; ++l) {
    const double denom = std::log(static_cast<double>(totals_[l]) + opt_.alpha * static_cast<double>(B));
    for (size_t b = 0; b < B; ++b)
      m.logp_[b * L + l] = static_cast<float>(std::log(counts_[b * L + l] + opt_.alpha) - denom);
  }
  return m;
}

std::vector<std::string_view> langid_snippets(std::string_view text, uint32_t min_chars) {
  std::vector<std::string_view> out;
  if (min_chars == 0) {
    out.push_back(text);
    return out;
  }
  auto chars = [](std::string_view s) {
    size_t c = 0;
    for (unsigned char ch : s) c += (ch & 0xC0) != 0x80;
    return c;
  };
  // Byte offset after k characters of s (or s.size()).
  auto after_chars = [](std::string_view s, size_t k) {
    size_t i = 0;
    for (size_t c = 0; i < s.size(); ++i) {
      if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
        if (c == k) return i;
        ++c;
      }
    }
    return s.size();
  };
  size_t start = 0, acc = 0, pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    size_t c = chars(text.substr(pos, end - pos));
    if (c > 4ull * min_chars) {  // a very long line: cut it into pieces of 2 * min_chars
      if (acc > 0) out.push_back(text.substr(start, pos - start));
      std::string_view rest = text.substr(pos, end - pos);
      while (chars(rest) > 4ull * min_chars) {
        size_t cut = after_chars(rest, 2ull * min_chars);
        out.push_back(rest.substr(0, cut));
        rest.remove_prefix(cut);
      }
      out.push_back(rest);
      start = end + 1 < text.size() ? end + 1 : text.size();
      acc = 0;
    } else {
      acc += c;
      if (acc >= min_chars) {
        out.push_back(text.substr(start, end - start));
        start = end + 1 < text.size() ? end + 1 : text.size();
        acc = 0;
      }
    }
    pos = end + 1;
  }
  if (acc >= min_chars / 2 && acc > 0 && start < text.size()) out.push_back(text.substr(start));
  return out;
}

uint64_t LangIdEvaluation::total() const {
  uint64_t t = 0;
  for (const auto& row : confusion)
    for (uint64_t v : row) t += v;
  return t;
}

uint64_t LangIdEvaluation::correct() const {
  uint64_t t = 0;
  for (size_t i = 0; i < confusion.size(); ++i) t += confusion[i][i];
  return t;
}

double LangIdEvaluation::precision(size_t lang) const {
  uint64_t predicted = 0;
  for (const auto& row : confusion) predicted += row[lang];
  return predicted ? static_cast<double>(confusion[lang][lang]) / static_cast<double>(predicted) : 0.0;
}

double LangIdEvaluation::recall(size_t lang) const {
  uint64_t actual = 0;
  for (uint64_t v : confusion[lang]) actual += v;
  return actual ? static_cast<double>(confusion[lang][lang]) / static_cast<double>(actual) : 0.0;
}

std::string LangIdEvaluation::table() const {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "  %-8s %10s %10s %10s  %s\n", "language", "texts", "precision", "recall",
                "most confused with");
  out += line;
  for (size_t l = 0; l < languages.size(); ++l) {
    uint64_t actual = 0;
    size_t worst = l;
    for (size_t p = 0; p < languages.size(); ++p) {
      actual += confusion[l][p];
      if (p != l && confusion[l][p] > 0 && (worst == l || confusion[l][p] > confusion[l][worst])) worst = p;
    }
    std::string conf = worst == l ? "-" : languages[worst] + " (" + std::to_string(confusion[l][worst]) + ")";
    std::snprintf(line, sizeof line, "  %-8s %10llu %9.2f%% %9.2f%%  %s\n", languages[l].c_str(),
                  static_cast<unsigned long long>(actual), 100 * precision(l), 100 * recall(l), conf.c_str());
    out += line;
  }
  const uint64_t t = total();
  std::snprintf(line, sizeof line, "  accuracy: %.2f%% of %llu texts\n", t ? 100.0 * correct() / t : 0.0,
                static_cast<unsigned long long>(t));
  out += line;
  return out;
}

std::string LangIdEvaluation::to_json() const {
  nlohmann::json j;
  j["texts"] = total();
  j["accuracy"] = total() ? static_cast<double>(correct()) / static_cast<double>(total()) : 0.0;
  nlohmann::json per = nlohmann::json::object();
  for (size_t l = 0; l < languages.size(); ++l) {
    uint64_t actual = 0;
    for (uint64_t v : confusion[l]) actual += v;
    per[languages[l]] = {{"texts", actual}, {"precision", precision(l)}, {"recall", recall(l)}};
  }
  j["languages"] = per;
  j["confusion"] = {{"labels", languages}, {"rows_true_columns_predicted", confusion}};
  return j.dump(2) + "\n";
}

}  // namespace agpt::curate
