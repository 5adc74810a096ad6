// Log-likelihood requests in tokens, made the way lm-evaluation-harness makes them, so that scores
// are comparable:
//  - (context, continuation) pairs: whitespace at the end of the context moves to the start of the
//    continuation; then whole = encode(context + continuation), ctx = encode(context), and the
//    continuation's tokens are whole[len(ctx):]. Where BPE merges across the boundary this is what
//    lm-eval scores too. An empty context becomes the prefix token (BOS, else EOS).
//  - No BOS is added otherwise (lm-eval's default for causal models); special-token text in the
//    prompt is matched as the special token, as Hugging Face's encode does.
//  - Rolling windows for whole documents: every token is predicted exactly once; the first window
//    starts from the prefix token, later ones see up to max_length earlier tokens as context.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "text/tokenizer.h"

namespace agpt::eval {

struct TokenRequest {
  std::vector<int32_t> context;       // at least one token
  std::vector<int32_t> continuation;  // the tokens whose log-probabilities are summed
};

// The token that starts a text with no context: BOS, else EOS; fails when the tokenizer has neither.
int32_t prefix_token(const text::Tokenizer& tokenizer);

std::vector<int32_t> encode(const text::Tokenizer& tokenizer, std::string_view text);

TokenRequest encode_pair(const text::Tokenizer& tokenizer, std::string_view context, std::string_view continuation);

// Windows over tokens for a model that sees max_length positions (>= 1): each window's input is at
// most max_length tokens, and the continuations of all windows together are `tokens`, in order.
std::vector<TokenRequest> rolling_windows(const std::vector<int32_t>& tokens, int32_t prefix, int64_t max_length);

}  // namespace agpt::eval
