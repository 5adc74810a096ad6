// Moment shards (the distributed optimizer's checkpoints, one file per rank): parts cut anywhere in
// a parameter load back into whole moments; an incomplete or overlapping set is a clear error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "base/file.h"
#include "model/llama.h"
#include "ops/cpu/cpu_backend.h"
#include "train/checkpoint.h"
#include "trainer_test_util.h"

namespace agpt::train {
namespace {

namespace fs = std::filesystem;

model::LlamaConfig tiny() {
  model::LlamaConfig c;
  c.vocab_size = 37;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.max_position_embeddings = 32;
  c.fill_defaults();
  return c;
}

// A checkpoint of `model` whose moments are known values, cut into `ranks` shards at `cut`
// (elements of the concatenated parameters) the way ZeRO-1 cuts its flat buffer.
struct Fixture {
  std::vector<model::TensorSpec> params;
  std::vector<std::vector<float>> m, v, w;

  explicit Fixture(const model::Llama& model) : params(model.tensor_specs()) {
    for (const auto& p : model.parameters()) {
      const auto n = static_cast<size_t>(ops::shape_numel(p.full_shape));
      std::vector<float> a(n), b(n), c(n);
      for (size_t k = 0; k < n; ++k) {
        a[k] = 0.001f * static_cast<float>(m.size() * 1000 + k);
        b[k] = 1.0f + a[k];
        c[k] = -a[k];
      }
      m.push_back(a), v.push_back(b), w.push_back(c);
    }
  }

  // Shards of the parameters' concatenation cut at the given boundaries (ascending, inside).
  std::vector<std::vector<MomentPart>> shards(const std::vector<int64_t>& cuts) const {
    std::vector<std::vector<MomentPart>> out(cuts.size() + 1);
    int64_t start = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      const auto n = static_cast<int64_t>(m[i].size());
      for (int64_t lo = 0; lo < n;) {
        size_t rank = 0;
        while (rank < cuts.size() && cuts[rank] <= start + lo) ++rank;
        const int64_t end = rank < cuts.size() ? std::min(n, cuts[rank] - start) : n;
        out[rank].push_back({i, lo, std::span(m[i]).subspan(lo, end - lo), std::span(v[i]).subspan(lo, end - lo)});
        lo = end;
      }
      start += n;
    }
    return out;
  }

  // As the ranks and rank 0 write one: begin, every shard, the weights, commit.
  std::string save(const fs::path& root, const model::LlamaConfig& config,
                   const std::vector<std::vector<MomentPart>>& moment_shards) const {
    TrainerState state;
    state.step = state.optimizer_steps = 3;
    const std::string begun = begin_checkpoint(root.string(), state.step);
    model::WrittenFiles written;
    const int ranks = static_cast<int>(moment_shards.size());
    for (int r = 0; r < ranks; ++r)
      written[moment_shard_file(r, ranks)] = write_moment_shard(begun, params, r, ranks, 3, moment_shards[r]);
    written.merge(model::save_model(begun, config, params, [this](size_t i) { return std::span<const float>(w[i]); },
                                    model::StDType::F32));
    return commit_checkpoint(root.string(), begun, written, state, "", 2);
  }
};

TEST(MomentShards, PartsCutAnywhereLoadAsWholeMoments) {
  auto be = ops::make_cpu_backend(1);
  model::Llama model(tiny(), *be);
  Fixture f(model);
  const fs::path root = test_util::fresh_dir("shards", "load") / "checkpoints";
  // Three ranks; the cuts fall inside the embedding and inside a layer's projection.
  const std::string dir = f.save(root, tiny(), f.shards({100, 1234}));
  EXPECT_EQ(verify_checkpoint(dir), "");
  for (const char* name : {"optimizer-00001-of-00003.safetensors", "optimizer-00003-of-00003.safetensors"})
    EXPECT_TRUE(fs::exists(fs::path(dir) / name)) << name;
  EXPECT_FALSE(fs::exists(fs::path(dir) / "optimizer.safetensors"));

  model::Llama loaded(tiny(), *be);
  std::vector<std::vector<float>> got[2];
  got[0].resize(f.params.size()), got[1].resize(f.params.size());
  TrainerState s = load_checkpoint(dir, loaded, [&](size_t i, int which, std::span<const float> values) {
    got[which][i].assign(values.begin(), values.end());
  });
  EXPECT_EQ(s.step, 3);
  for (size_t i = 0; i < f.params.size(); ++i) {
    EXPECT_EQ(got[0][i], f.m[i]) << f.params[i].name;
    EXPECT_EQ(got[1][i], f.v[i]) << f.params[i].name;
    EXPECT_EQ(be->to_host_f32(loaded.parameters()[i].value), f.w[i]) << f.params[i].name;
  }
}

// Tensor parallelism: parts of split parameters lie in a rank's slice (rows, or columns: not
// contiguous in the whole tensor) and carry the slice; loading puts every element in its place.
// A slice that does not fit its tensor is a clear error.
TEST(MomentShards, PartsOfTensorParallelSlicesLoadAsWholeMoments) {
  auto be = ops::make_cpu_backend(1);
  model::Llama model(tiny(), *be);
  Fixture f(model);
  auto index_of = [&](const std::string& name) {
    for (size_t i = 0; i < f.params.size(); ++i)
      if (f.params[i].name == name) return i;
    ADD_FAILURE() << "no " << name;
    return size_t{0};
  };
  const size_t rows_split = index_of("model.layers.0.self_attn.q_proj.weight");  // [16, 16], by rows
  const size_t cols_split = index_of("model.layers.1.mlp.down_proj.weight");     // [16, 24], by columns
  // The local slices' values, kept alive for the parts' spans.
  std::vector<std::vector<float>> keep;
  auto slice_of = [&](const std::vector<float>& full, int64_t cols, const model::Shard& sl) {
    std::vector<float> local;
    const int64_t rows = static_cast<int64_t>(full.size()) / cols;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        if ((sl.dim == 0 && r >= sl.begin && r < sl.begin + sl.count) || (sl.dim == 1 && c >= sl.begin && c < sl.begin + sl.count))
          local.push_back(full[static_cast<size_t>(r * cols + c)]);
    keep.push_back(local);
    return std::span<const float>(keep.back());
  };
  keep.reserve(16);
  std::vector<std::vector<MomentPart>> shards(4);  // (a file holds one part of a parameter)
  for (size_t i = 0; i < f.params.size(); ++i) {
    if (i != rows_split && i != cols_split) {
      shards[0].push_back({i, 0, f.m[i], f.v[i]});
      continue;
    }
    const int64_t cols = f.params[i].shape[1];
    const int dim = i == rows_split ? 0 : 1;
    const int64_t half = f.params[i].shape[static_cast<size_t>(dim)] / 2;
    for (int r = 0; r < 2; ++r) {
      const model::Shard sl{dim, r * half, half, f.params[i].shape[static_cast<size_t>(dim)]};
      // Each slice in two parts (two data-parallel ranks), the second starting mid-row.
      auto m = slice_of(f.m[i], cols, sl), v = slice_of(f.v[i], cols, sl);
      const size_t cut = m.size() / 2 + 3;
      shards[static_cast<size_t>(2 * r)].push_back({i, 0, m.first(cut), v.first(cut), {}, sl});
      shards[static_cast<size_t>(2 * r + 1)].push_back({i, static_cast<int64_t>(cut), m.subspan(cut), v.subspan(cut), {}, sl});
    }
  }
  const fs::path root = test_util::fresh_dir("shards", "sliced");
  const std::string dir = f.save(root / "ok", tiny(), shards);
  model::Llama loaded(tiny(), *be);
  std::vector<std::vector<float>> got[2];
  got[0].resize(f.params.size()), got[1].resize(f.params.size());
  load_checkpoint(dir, loaded, [&](size_t i, int which, std::span<const float> values) {
    got[which][i].assign(values.begin(), values.end());
  });
  for (size_t i = 0; i < f.params.size(); ++i) {
    EXPECT_EQ(got[0][i], f.m[i]) << f.params[i].name;
    EXPECT_EQ(got[1][i], f.v[i]) << f.params[i].name;
  }
  // A column slice past the tensor's 24 columns.
  auto bad = shards;
  for (auto& part : bad[0])
    if (part.param == cols_split) part.slice.begin = 20;
  const std::string bad_dir = f.save(root / "bad", tiny(), bad);
  try {
    model::Llama again(tiny(), *be);
    load_checkpoint(bad_dir, again, [](size_t, int, std::span<const float>) {});
    ADD_FAILURE() << "a slice outside its tensor loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lies outside"), std::string::npos) << e.what();
  }
}

TEST(MomentShards, IncompleteOrOverlappingShardsAreClearErrors) {
  auto be = ops::make_cpu_backend(1);
  model::Llama model(tiny(), *be);
  Fixture f(model);
  const fs::path base = test_util::fresh_dir("shards", "bad");
  auto sink = [](size_t, int, std::span<const float>) {};

  // A shard file the state lists but that is gone: verification names it.
  const std::string dir = f.save(base / "gone", tiny(), f.shards({500}));
  fs::remove(fs::path(dir) / "optimizer-00002-of-00002.safetensors");
  EXPECT_NE(verify_checkpoint(dir).find("missing optimizer-00002-of-00002"), std::string::npos) << verify_checkpoint(dir);

  // The state lists only some of the shards (re-signed, as if written so): verification says so.
  {
    const std::string listed = f.save(base / "listed", tiny(), f.shards({500}));
    const std::string state_path = (fs::path(listed) / "trainer_state.json").string();
    auto j = nlohmann::ordered_json::parse(read_file(state_path));
    j["files"].erase("optimizer-00002-of-00002.safetensors");
    j.erase("state_checksum");
    char hex[20];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(checksum_bytes(j.dump())));
    j["state_checksum"] = hex;
    write_file_atomic(state_path, j.dump(2));
    EXPECT_NE(verify_checkpoint(listed).find("lists 1 of its 2 optimizer moment shards"), std::string::npos)
        << verify_checkpoint(listed);
  }

  // A part lost (a gap in one parameter): loading says which parameter and where.
  auto gap = f.shards({500});
  gap[1].erase(gap[1].begin());
  const std::string gap_dir = f.save(base / "gap", tiny(), gap);
  try {
    model::Llama loaded(tiny(), *be);
    load_checkpoint(gap_dir, loaded, sink);
    ADD_FAILURE() << "a shard set with a gap loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("do not cover 'model.embed_tokens.weight' (element 500 of 592 is in no part)"),
              std::string::npos)
        << e.what();
  }

  // The same parameter twice in one shard is refused when writing; in two shards (two ranks
  // claiming it), when loading.
  auto twice = f.shards({500});
  auto same_file = twice;
  same_file[1].push_back(same_file[0].front());  // the embedding's first part, and rank 1 has its rest
  EXPECT_THROW(f.save(base / "same_file", tiny(), same_file), Error);
  twice[0].push_back(twice[1][1]);  // a whole parameter of rank 1's
  const std::string twice_dir = f.save(base / "twice", tiny(), twice);
  try {
    model::Llama loaded(tiny(), *be);
    load_checkpoint(twice_dir, loaded, sink);
    ADD_FAILURE() << "overlapping shards loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("overlap"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(f.params[twice[1][1].param].name), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace agpt::train
