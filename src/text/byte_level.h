// GPT-2's byte-level alphabet: every byte 0..255 maps to one printable Unicode character, so that
// token strings in vocab.json / tokenizer.json / merges files are valid text. Printable Latin-1 bytes
// map to themselves; the other 68 bytes map to U+0100.. in byte order.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace agpt::text {

// The UTF-8 text of the character that stands for byte b.
const std::string& byte_level_char(unsigned char b);

// Raw bytes -> byte-level text (e.g. " hello" -> "Ġhello").
std::string byte_level_encode(std::string_view bytes);

// Byte-level text -> raw bytes; nullopt if it contains a character outside the alphabet.
std::optional<std::string> byte_level_decode(std::string_view text);

}  // namespace agpt::text
