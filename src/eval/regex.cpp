#define PCRE2_CODE_UNIT_WIDTH 8
#include "eval/regex.h"

#include <pcre2.h>

#include "base/error.h"

namespace agpt::eval {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  uint32_t groups = 0;
  ~Impl() {
    if (code) pcre2_code_free(code);
  }
};

Regex::Regex(const std::string& pattern) : impl_(std::make_unique<Impl>()) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  // PCRE2_MATCH_INVALID_UTF: generated text may hold invalid UTF-8; it must not stop matching.
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &offset, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail("regular expression '", pattern, "': ", reinterpret_cast<const char*>(msg), " at offset ", offset);
  }
  pcre2_pattern_info(impl_->code, PCRE2_INFO_CAPTURECOUNT, &impl_->groups);
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

namespace {
// Calls f(ovector) for each non-overlapping match; stops on errors (e.g. match limits).
template <typename F>
void each_match(pcre2_code* code, std::string_view text, F f) {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  PCRE2_SIZE start = 0;
  while (start <= text.size()) {
    int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, 0, md, nullptr);
    if (rc < 0) break;
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    f(ov, rc);
    if (ov[1] > ov[0]) {
      start = ov[1];
    } else {  // an empty match: step one character forward
      start = ov[1] + 1;
      while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) ++start;
    }
  }
  pcre2_match_data_free(md);
}
}  // namespace

std::vector<std::string> Regex::find_all(std::string_view text) const {
  std::vector<std::string> out;
  each_match(impl_->code, text, [&](PCRE2_SIZE* ov, int rc) {
    if (impl_->groups == 0) {
      out.emplace_back(text.substr(ov[0], ov[1] - ov[0]));
      return;
    }
    std::string pick;
    for (int g = 1; g < rc; ++g)
      if (ov[2 * g] != PCRE2_UNSET && ov[2 * g + 1] > ov[2 * g]) {
        pick = std::string(text.substr(ov[2 * g], ov[2 * g + 1] - ov[2 * g]));
        break;
      }
    out.push_back(pick);
  });
  return out;
}

std::string Regex::replace_all(std::string_view text, std::string_view with) const {
  std::string out;
  size_t last = 0;
  each_match(impl_->code, text, [&](PCRE2_SIZE* ov, int) {
    out.append(text.substr(last, ov[0] - last));
    out.append(with);
    last = ov[1];
  });
  out.append(text.substr(last));
  return out;
}

}  // namespace agpt::eval
