#include "dataset/sample_source.h"

#include <filesystem>
#include <mutex>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/file.h"

namespace agpt::dataset {
namespace {

// FNV-1a (64-bit) of a plan's JSON without what names paths (the list file, the prefixes, the
// warnings that quote them): a plan moved or re-made from a list elsewhere, over the same files
// (their content fingerprints stay), is the same plan.
uint64_t plan_fingerprint(const std::string& json) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(json);
  j.erase("list");
  j.erase("warnings");
  if (j.contains("sources"))
    for (auto& o : j["sources"])
      if (o.is_object()) o.erase("prefix");
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : j.dump()) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

class MixtureSource final : public SampleSource {
 public:
  explicit MixtureSource(std::shared_ptr<const Mixture> m) : m_(std::move(m)) {
    if (!m_) fail("no mixture given");
  }
  const char* order() const override { return "agpt"; }
  uint64_t seq_len() const override { return m_->options().seq_len; }
  uint64_t start_index(Split s) const override { return m_->start_index(s); }
  uint64_t end_index(Split s) const override { return m_->end_index(s); }
  bool read(Split split, uint64_t index, uint32_t* out, SampleRef* ref) const override {
    if (index < m_->start_index(split) || index >= m_->end_index(split))
      fail(split_name(split), " sample ", index, " is outside the plan's [", m_->start_index(split), ", ",
           m_->end_index(split), ")");
    SampleRef r = m_->sample(split, index);
    m_->read(r, out);
    if (ref) *ref = r;
    return true;
  }
  StreamState state_at(Split split, uint64_t consumed) const override { return m_->state_at(split, consumed); }
  bool supports_changed_mixture_resume() const override { return true; }
  const std::vector<std::string>& warnings() const override { return m_->warnings(); }
  uint64_t fingerprint() const override {
    std::call_once(fingerprinted_, [&] { fingerprint_ = plan_fingerprint(m_->to_json()); });
    return fingerprint_;
  }
  const Mixture& mixture() const { return *m_; }

 private:
  std::shared_ptr<const Mixture> m_;
  mutable std::once_flag fingerprinted_;
  mutable uint64_t fingerprint_ = 0;
};

class MegatronSource final : public SampleSource {
 public:
  explicit MegatronSource(std::shared_ptr<const MegatronOrder> o) : o_(std::move(o)) {
    if (!o_) fail("no Megatron order given");
  }
  const char* order() const override { return "megatron"; }
  uint64_t seq_len() const override { return o_->options().seq_len; }
  uint64_t start_index(Split) const override { return 0; }
  uint64_t end_index(Split s) const override { return o_->size(s); }
  bool read(Split split, uint64_t index, uint32_t* out, SampleRef*) const override {
    if (index >= o_->size(split))
      fail(split_name(split), " sample ", index, " is past the Megatron order's ", o_->size(split), " samples");
    o_->read(split, index, out);
    return false;
  }
  StreamState state_at(Split, uint64_t consumed) const override {
    StreamState st;
    st.consumed = consumed;
    return st;
  }
  bool supports_changed_mixture_resume() const override { return false; }
  const std::vector<std::string>& warnings() const override { return o_->warnings(); }
  uint64_t fingerprint() const override {
    std::call_once(fingerprinted_, [&] { fingerprint_ = plan_fingerprint(o_->to_json()); });
    return fingerprint_;
  }
  const MegatronOrder& megatron() const { return *o_; }

 private:
  std::shared_ptr<const MegatronOrder> o_;
  mutable std::once_flag fingerprinted_;
  mutable uint64_t fingerprint_ = 0;
};

}  // namespace

std::shared_ptr<const SampleSource> sample_source(std::shared_ptr<const Mixture> mixture) {
  return std::make_shared<const MixtureSource>(std::move(mixture));
}

std::shared_ptr<const SampleSource> sample_source(std::shared_ptr<const MegatronOrder> order) {
  return std::make_shared<const MegatronSource>(std::move(order));
}

std::string plan_order(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "mixture.json").string();
  if (!file_exists(path)) fail(path, ": no mixture plan there; make one with `agpt data mix --out ", dir, "`");
  nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(path, ": not a valid JSON mixture plan; re-run `agpt data mix`");
  const auto it = j.find("order");
  if (it == j.end()) return "agpt";
  if (!it->is_string()) fail(path, ": \"order\" must be a string (agpt or megatron), not ", it->dump());
  std::string order = it->get<std::string>();
  if (order != "agpt" && order != "megatron")
    fail(path, ": unknown sample order \"", order, "\" (this agpt serves agpt and megatron)");
  return order;
}

std::shared_ptr<const SampleSource> load_sample_source(const std::string& dir) {
  if (plan_order(dir) == "megatron")
    return sample_source(std::make_shared<const MegatronOrder>(MegatronOrder::load(dir)));
  return sample_source(std::make_shared<const Mixture>(Mixture::load(dir)));
}

const Mixture* as_mixture(const SampleSource& source) {
  auto* s = dynamic_cast<const MixtureSource*>(&source);
  return s ? &s->mixture() : nullptr;
}

const MegatronOrder* as_megatron_order(const SampleSource& source) {
  auto* s = dynamic_cast<const MegatronSource*>(&source);
  return s ? &s->megatron() : nullptr;
}

}  // namespace agpt::dataset
