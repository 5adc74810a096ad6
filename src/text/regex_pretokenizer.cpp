// PCRE2-backed pre-tokenizer: any pattern, Unicode properties, JIT-compiled.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <mutex>

#include "base/error.h"
#include "text/pretokenizer.h"

namespace agpt::text {
namespace {

class RegexPreTokenizer final : public PreTokenizer {
 public:
  explicit RegexPreTokenizer(const std::string& pattern) : pattern_(pattern) {
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error_code, &error_offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(error_code, msg, sizeof msg);
      fail("pre-tokenizer pattern does not compile at offset ", error_offset, ": ",
           reinterpret_cast<const char*>(msg), "\n  pattern: ", pattern);
    }
    jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  }
  ~RegexPreTokenizer() override { pcre2_code_free(code_); }

  const std::string& pattern() const override { return pattern_; }

  void split(std::string_view text, std::vector<std::string_view>& out) const override {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t pos = 0, emitted = 0;
    while (pos < text.size()) {
      int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr)
                    : pcre2_match(code_, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;  // no further match
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      size_t start = ov[0], end = ov[1];
      if (start > emitted) out.push_back(text.substr(emitted, start - emitted));  // unmatched gap
      if (end > start) {
        out.push_back(text.substr(start, end - start));
        pos = end;
      } else {
        // Empty match: step one UTF-8 character so the scan always advances.
        pos = start + 1;
        while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
        continue;
      }
      emitted = end;
    }
    if (emitted < text.size()) out.push_back(text.substr(emitted));
    pcre2_match_data_free(md);
  }

 private:
  std::string pattern_;
  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_regex_pretokenizer(const std::string& pattern) {
  return std::make_unique<RegexPreTokenizer>(pattern);
}

}  // namespace agpt::text
