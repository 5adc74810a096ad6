#include "eval/requests.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "base/error.h"

namespace agpt::eval {

int32_t prefix_token(const text::Tokenizer& tokenizer) {
  auto id = tokenizer.bos_id() ? tokenizer.bos_id() : tokenizer.eos_id();
  if (!id) fail("an empty context needs a start token, but the tokenizer has no BOS or EOS token");
  return static_cast<int32_t>(*id);
}

std::vector<int32_t> encode(const text::Tokenizer& tokenizer, std::string_view text) {
  std::vector<uint32_t> ids = tokenizer.encode(text, /*allow_special=*/true);
  return {ids.begin(), ids.end()};
}

TokenRequest encode_pair(const text::Tokenizer& tokenizer, std::string_view context, std::string_view continuation) {
  TokenRequest r;
  if (context.empty()) {
    r.context = {prefix_token(tokenizer)};
    r.continuation = encode(tokenizer, continuation);
    return r;
  }
  size_t keep = context.size();
  while (keep > 0 && std::isspace(static_cast<unsigned char>(context[keep - 1]))) --keep;
  std::string ctx(context.substr(0, keep));
  std::string cont = std::string(context.substr(keep)) + std::string(continuation);
  std::vector<int32_t> whole = encode(tokenizer, ctx + cont);
  r.context = encode(tokenizer, ctx);
  size_t split = std::min(r.context.size(), whole.size());
  r.continuation.assign(whole.begin() + static_cast<std::ptrdiff_t>(split), whole.end());
  if (r.context.empty()) r.context = {prefix_token(tokenizer)};  // the context was only whitespace
  return r;
}

std::vector<TokenRequest> rolling_windows(const std::vector<int32_t>& tokens, int32_t prefix, int64_t max_length) {
  if (max_length < 1) fail("rolling windows need a max length >= 1, got ", max_length);
  std::vector<TokenRequest> out;
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return out;
  auto at = [&](int64_t b, int64_t e) { return std::vector<int32_t>(tokens.begin() + b, tokens.begin() + e); };
  // First window: the prefix token, then up to max_length - 1 tokens; predicts the first max_length.
  int64_t first = std::min(max_length, n);
  out.push_back({{prefix}, at(0, first)});
  int64_t predicted = first;
  while (predicted < n) {
    int64_t len = std::min(n - predicted, max_length);  // tokens predicted by this window
    int64_t end = predicted + len;
    // Input: the max_length tokens before `end`'s last position; context = those not predicted here.
    int64_t in_begin = std::max<int64_t>(0, end - 1 - max_length);
    out.push_back({at(in_begin, end - len), at(end - len, end)});
    predicted = end;
  }
  return out;
}

}  // namespace agpt::eval
