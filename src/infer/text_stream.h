// TextStream: turns the bytes of generated tokens into text that is safe to show as it comes.
// Text is held back while it could still be
//   - the start of a stop string (a stop string may span several tokens: "\n\n" from "\n" + "\n"),
//   - an incomplete UTF-8 character (byte-level BPE may split "é" = C3 A9 over two tokens);
// it is released as soon as the next bytes rule that out. When a stop string appears, the text
// before it is released and everything from it on is dropped.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace agpt::infer {

class TextStream {
 public:
  // Fails (agpt::Error) on an empty stop string.
  explicit TextStream(std::vector<std::string> stop_strings = {});

  // Adds the bytes of one token; returns the text that can be shown now (often empty). After a
  // stop string was found it returns "" and ignores the bytes.
  std::string push(std::string_view bytes);
  // The held-back rest at the end of generation (an incomplete UTF-8 tail comes out as it is).
  std::string finish();

  bool stopped() const { return stopped_; }
  const std::string& matched_stop() const { return matched_; }  // the stop string found, or ""

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  std::string matched_;
  bool stopped_ = false;
};

// The length of the longest prefix of s[0, end) that does not end inside a UTF-8 character whose
// remaining bytes may still come (end itself when the last character is complete or invalid).
size_t complete_utf8_prefix(std::string_view s, size_t end);

}  // namespace agpt::infer
