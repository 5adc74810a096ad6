// Activation recomputation: the same loss and bit-identical gradients as keeping every layer's
// activations, over two forward/backward rounds (the shared buffers are reused), for tied and
// untied embeddings and for 1 and 3 layers.
#include <gtest/gtest.h>

#include "model/llama.h"
#include "ops/cpu/cpu_backend.h"

namespace agpt::model {
namespace {

LlamaConfig config(int64_t layers, bool tied) {
  LlamaConfig c;
  c.vocab_size = 61;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 32;
  c.tie_word_embeddings = tied;
  c.fill_defaults();
  return c;
}

TEST(Recompute, SameLossAndBitIdenticalGradients) {
  auto be = ops::make_cpu_backend(2);
  for (int64_t layers : {1, 3})
    for (bool tied : {false, true}) {
      Llama plain(config(layers, tied), *be), re(config(layers, tied), *be);
      plain.init_weights(11);
      re.init_weights(11);
      re.set_recompute(true);
      const int64_t B = 2, T = 9;
      for (int round = 0; round < 2; ++round) {
        std::vector<int32_t> ids(B * T);
        for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 13 + 5 + round * 7) % 61);
        auto targets = shift_targets(ids, B, T);
        float a = plain.forward(ids, targets, B, T), b = re.forward(ids, targets, B, T);
        EXPECT_EQ(a, b) << layers << " layers, tied " << tied;
        EXPECT_EQ(be->to_host_f32(plain.logits()), be->to_host_f32(re.logits()));
        plain.zero_grad();
        re.zero_grad();
        plain.backward();
        re.backward();
        for (size_t i = 0; i < plain.parameters().size(); ++i)
          EXPECT_EQ(be->to_host_f32(plain.parameters()[i].grad), be->to_host_f32(re.parameters()[i].grad))
              << plain.parameters()[i].name << ", " << layers << " layers, tied " << tied << ", round " << round;
      }
    }
}

}  // namespace
}  // namespace agpt::model
