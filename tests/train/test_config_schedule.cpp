// TrainConfig (TOML, overrides, errors naming the closest key) and the learning-rate schedules.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <numbers>

#include "base/error.h"
#include "model/llama.h"
#include "train/config.h"
#include "train/schedule.h"

using namespace agpt;
using namespace agpt::train;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kToml = R"(
[model]
preset = "none"
vocab_size = 256
hidden_size = 32
intermediate_size = 64
num_hidden_layers = 2
num_attention_heads = 4
num_key_value_heads = 2
tie_word_embeddings = false

[data]
mixture = "/tmp/mix"

[train]
micro_batch = 2
grad_accum = 3
steps = 1e3
lr = 1e-3
min_lr = 0
schedule = "wsd"
out_dir = "/tmp/run"
)";

}  // namespace

TEST(TrainConfig, ParsesSectionsAndOverrides) {
  TrainConfig c = TrainConfig::parse(kToml, "t.toml", {{"train.lr", "3e-4"}, {"model.tie_word_embeddings", "true"}});
  EXPECT_EQ(c.model.hidden_size, 32);
  EXPECT_EQ(c.train.grad_accum, 3);
  EXPECT_EQ(c.train.steps, 1000);  // 1e3 accepted as an integer
  EXPECT_DOUBLE_EQ(c.train.lr, 3e-4);
  EXPECT_EQ(c.train.schedule, "wsd");
  EXPECT_EQ(c.data.mixture, "/tmp/mix");
  model::LlamaConfig l = c.llama_config(16);
  EXPECT_EQ(l.vocab_size, 256);
  EXPECT_EQ(l.num_key_value_heads, 2);
  EXPECT_EQ(l.head_dim, 8);
  EXPECT_EQ(l.max_position_embeddings, 16);
  EXPECT_TRUE(l.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(l.initializer_range, 0.02);
}

TEST(TrainConfig, UnknownKeysNameTheClosestValidKey) {
  std::string e = error_of([] { TrainConfig::parse("[train]\nlearning_rat = 1\n[data]\nmixture='x'", "t.toml"); });
  EXPECT_NE(e.find("t.toml:2"), std::string::npos) << e;
  e = error_of([] { TrainConfig::parse("[train]\nlrr = 1\n[data]\nmixture='x'", "t.toml"); });
  EXPECT_NE(e.find("did you mean 'train.lr'"), std::string::npos) << e;
  e = error_of([] { TrainConfig::parse("[trian]\nlr = 1\n", "t.toml"); });
  EXPECT_NE(e.find("[train]"), std::string::npos) << e;
  e = error_of([] { TrainConfig::parse("[data]\nmixture='x'", "t.toml", {{"train.warmpu", "3"}}); });
  EXPECT_NE(e.find("train.warmup"), std::string::npos) << e;
  e = error_of([] { parse_overrides({"--train.micro_bach", "3"}); });
  EXPECT_NE(e.find("train.micro_batch"), std::string::npos) << e;
}

TEST(TrainConfig, BadValuesAreClearErrors) {
  auto bad = [](const std::string& toml, const std::string& want) {
    std::string e = error_of([&] { TrainConfig::parse(toml, "t.toml"); });
    EXPECT_NE(e.find(want), std::string::npos) << "got: " << e;
  };
  bad("[data]\nmixture='x'\n[train]\nlr = 'fast'", "train.lr must be a number");
  bad("[data]\nmixture='x'\n[train]\nsteps = 2.5", "train.steps must be an integer");
  bad("[data]\nmixture='x'\n[train]\nmicro_batch = 0", "micro_batch must be at least 1");
  bad("[data]\nmixture='x'\n[train]\nschedule = 'cosin'", "did you mean 'cosine'");
  bad("[data]\nmixture='x'\n[model]\npreset = '125M'", "model.preset");
  bad("[train]\nlr = 1", "give exactly one of data.mixture");
  bad("[data]\ndataset='x'", "data.seq_len is required");
  bad("[data]\nmixture='x'\n[train]\nlr = 1e-3\nmin_lr = 1e-2", "min_lr");
  bad("[data\nmixture='x'", "TOML syntax error");
  bad("lr = 3\n[data]\nmixture='x'", "did you mean 'train.lr'");
  bad("[data]\nmixture='x'\n[train]\nlr = nan", "finite");
  bad("[data]\nmixture='x'\n[train]\nupdate_in_backward = true", "train.update_in_backward needs train.clip = 0");
  bad("[data]\nmixture='x'\n[train]\nupdate_in_backward = true\nclip = 0\ngrad_accum = 2", "and train.grad_accum = 1");
  EXPECT_EQ(error_of([] { TrainConfig::parse("[data]\nmixture='x'\n[train]\nupdate_in_backward = true\nclip = 0", "t.toml"); }), "(no error)");
  std::string e = error_of([] { TrainConfig::parse("[data]\nmixture='x'", "t.toml", {{"train.steps", "many"}}); });
  EXPECT_NE(e.find("command line: train.steps must be an integer, not 'many'"), std::string::npos) << e;
}

TEST(TrainConfig, OverridesFromTheCommandLine) {
  auto o = parse_overrides({"--train.lr", "3e-4", "--train.steps=5", "--data.mixture", "m"});
  ASSERT_EQ(o.size(), 3u);
  EXPECT_EQ(o[0], (std::pair<std::string, std::string>{"train.lr", "3e-4"}));
  EXPECT_EQ(o[1], (std::pair<std::string, std::string>{"train.steps", "5"}));
  EXPECT_THROW(parse_overrides({"--train.lr"}), Error);
  EXPECT_THROW(parse_overrides({"stray"}), Error);
}

TEST(TrainConfig, TomlRoundTripAndHash) {
  TrainConfig c = TrainConfig::parse(kToml, "t.toml");
  TrainConfig d = TrainConfig::parse(c.to_toml(), "round.toml");
  EXPECT_EQ(c.to_json(), d.to_json());
  EXPECT_EQ(c.trajectory_hash(), d.trajectory_hash());
  d.train.out_dir = "/elsewhere";  // not part of the trajectory
  d.train.checkpoint_every = 7;
  EXPECT_EQ(c.trajectory_hash(), d.trajectory_hash());
  d.train.lr = 1e-2;
  EXPECT_NE(c.trajectory_hash(), d.trajectory_hash());
  for (const KeyInfo& k : key_table()) EXPECT_NE(k.help.find("[default:"), std::string::npos) << k.name;
}

// train.param_dtype: bf16 is another trajectory than the default fp32 (which adds nothing to the
// hash, so checkpoints from before the key existed resume as the same run); anything else is refused.
TEST(TrainConfig, ParamDtype) {
  TrainConfig c = TrainConfig::parse(kToml, "t.toml");
  EXPECT_EQ(c.train.param_dtype, "fp32");
  TrainConfig d = TrainConfig::parse(kToml, "t.toml", {{"train.param_dtype", "bf16"}});
  EXPECT_NE(c.trajectory_hash(), d.trajectory_hash());
  d.train.param_dtype = "fp32";
  EXPECT_EQ(c.trajectory_hash(), d.trajectory_hash());
  std::string e = error_of([] { TrainConfig::parse(kToml, "t.toml", {{"train.param_dtype", "fp16"}}); });
  EXPECT_NE(e.find("train.param_dtype is 'fp16', expected fp32 or bf16"), std::string::npos) << e;
}

// train.deterministic: on by default; turning it off (faster, non-reproducible CUDA kernels) is
// the same trajectory, so a run may resume with either.
TEST(TrainConfig, DeterministicIsTheDefaultAndNotPartOfTheTrajectory) {
  TrainConfig c = TrainConfig::parse(kToml, "t.toml");
  EXPECT_EQ(c.train.deterministic, 1);
  TrainConfig d = TrainConfig::parse(kToml, "t.toml", {{"train.deterministic", "false"}});
  EXPECT_EQ(d.train.deterministic, 0);
  EXPECT_EQ(c.trajectory_hash(), d.trajectory_hash());
  EXPECT_EQ(TrainConfig::parse(d.to_toml(), "round.toml").train.deterministic, 0);
  std::string e = error_of([] { TrainConfig::parse(kToml, "t.toml", {{"train.deterministic", "maybe"}}); });
  EXPECT_NE(e.find("train.deterministic"), std::string::npos) << e;
}

TEST(TrainConfig, PresetsHaveTheExpectedSizes) {
  auto count = [](const std::string& preset, int64_t vocab) {
    TrainConfig c = TrainConfig::parse("[data]\nmixture='x'", "t.toml", {{"model.preset", preset}, {"model.vocab_size", std::to_string(vocab)}});
    return model::parameter_count(c.llama_config(1024));
  };
  EXPECT_NEAR(count("124M", 50304) / 1e6, 124, 2);
  EXPECT_NEAR(count("350M", 50304) / 1e6, 350, 25);
  EXPECT_NEAR(count("1B", 128256) / 1e9, 1.24, 0.01);  // the Llama-3.2-1B shape
  EXPECT_NEAR(count("7B", 32000) / 1e9, 6.74, 0.01);   // the Llama-2-7B shape
  EXPECT_LT(count("tiny", 256), 2'000'000);
  std::string e = error_of([] { TrainConfig::parse("[data]\nmixture='x'", "t.toml").llama_config(16); });
  EXPECT_NE(e.find("model.vocab_size or data.tokenizer"), std::string::npos) << e;
}

TEST(Schedule, WarmupThenCosineLinearWsd) {
  ScheduleConfig s{"cosine", 1.0, 0.1, 10, 110, 0.2};
  EXPECT_DOUBLE_EQ(learning_rate(s, 1), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(s, 5), 0.5);
  EXPECT_DOUBLE_EQ(learning_rate(s, 10), 1.0);
  EXPECT_NEAR(learning_rate(s, 60), 0.55, 1e-12);  // halfway through the decay
  EXPECT_DOUBLE_EQ(learning_rate(s, 110), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(s, 500), 0.1);
  for (int64_t k = 11; k <= 110; ++k) EXPECT_LE(learning_rate(s, k), learning_rate(s, k - 1) + 1e-15);
  s.kind = "linear";
  EXPECT_NEAR(learning_rate(s, 60), 0.55, 1e-12);
  EXPECT_NEAR(learning_rate(s, 35), 1.0 - 0.9 * 0.25, 1e-12);
  EXPECT_DOUBLE_EQ(learning_rate(s, 110), 0.1);
  s.kind = "wsd";  // decay over the last 22 steps (0.2 x 110)
  EXPECT_DOUBLE_EQ(learning_rate(s, 50), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate(s, 88), 1.0);
  EXPECT_NEAR(learning_rate(s, 99), 1.0 - 0.9 * 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(learning_rate(s, 110), 0.1);
  ScheduleConfig none{"cosine", 2.0, 0.0, 0, 3, 0.2};
  EXPECT_DOUBLE_EQ(learning_rate(none, 1), 2.0 * 0.5 * (1 + std::cos(std::numbers::pi / 3)));
  EXPECT_THROW(learning_rate(none, 0), Error);
}
