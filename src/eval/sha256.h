// SHA-256 (FIPS 180-4), written from the standard: the hashes of task and data files in results,
// so a result says exactly which files produced it (the same value `sha256sum` prints).
#pragma once
#include <string>
#include <string_view>

namespace agpt::eval {

// 64 lowercase hex digits.
std::string sha256_hex(std::string_view data);

}  // namespace agpt::eval
