#include "infer/text_stream.h"

#include <algorithm>

#include "base/error.h"

namespace agpt::infer {

size_t complete_utf8_prefix(std::string_view s, size_t end) {
  // Step back over up to three continuation bytes (10xxxxxx) to the byte that starts the character.
  size_t start = end, continuations = 0;
  while (start > 0 && continuations < 3 && (static_cast<unsigned char>(s[start - 1]) & 0xC0) == 0x80)
    --start, ++continuations;
  if (start == 0) return end;
  unsigned char lead = static_cast<unsigned char>(s[start - 1]);
  size_t length = lead >= 0xF0 && lead <= 0xF7 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (lead >= 0xF8) length = 1;  // not a lead byte: nothing will complete it
  return continuations + 1 < length ? start - 1 : end;
}

TextStream::TextStream(std::vector<std::string> stop_strings) : stops_(std::move(stop_strings)) {
  for (const std::string& s : stops_)
    if (s.empty()) fail("a stop string is empty (it would stop before the first token)");
}

std::string TextStream::push(std::string_view bytes) {
  if (stopped_) return "";
  pending_.append(bytes);
  // Any stop string occurrence starts inside pending_: a suffix of released text that began one
  // was never released (below).
  size_t first = std::string::npos;
  for (const std::string& s : stops_) {
    size_t at = pending_.find(s);
    if (at < first) first = at, matched_ = s;
  }
  if (first != std::string::npos) {
    std::string out = pending_.substr(0, first);
    pending_.clear();
    stopped_ = true;
    return out;
  }
  // Hold back the longest suffix that is a proper prefix of a stop string.
  size_t hold = 0;
  for (const std::string& s : stops_)
    for (size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len)
      if (std::string_view(pending_).substr(pending_.size() - len) == std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
  size_t release = complete_utf8_prefix(pending_, pending_.size() - hold);
  std::string out = pending_.substr(0, release);
  pending_.erase(0, release);
  return out;
}

std::string TextStream::finish() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace agpt::infer
