#include "dataset/megatron_order.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/file.h"
#include "base/parallel.h"
#include "dataset/data_list.h"
#include "dataset/megatron_blend.h"
#include "dataset/numpy_math.h"
#include "dataset/numpy_random.h"
#include "dataset/permutation.h"

namespace agpt::dataset {
namespace {

constexpr size_t kIdxHeaderBytes = 34;  // MMIDIDX: magic 9, version 8, dtype 1, sequences 8, doc bounds 8

// Reads exactly `size` bytes at `offset`; false at end of file or on an error (errno says which).
bool pread_all(int fd, void* dst, size_t size, uint64_t offset) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, static_cast<char*>(dst) + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = 0;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

// The int32 sequence lengths [begin, end) of a .idx, read with pread (no mapping left behind, so the
// resident set does not grow with every file's index).
IndexVector<int32_t> read_sizes(const std::string& prefix, uint64_t begin, uint64_t end) {
  IndexVector<int32_t> sizes(end - begin);
  if (sizes.empty()) return sizes;
  const std::string path = prefix + ".idx";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
  FdCloser closer{fd};
  if (!pread_all(fd, sizes.data(), sizes.size() * sizeof(int32_t), kIdxHeaderBytes + begin * sizeof(int32_t)))
    fail(path, ": reading sequence lengths ", begin, "..", end, " failed: ",
         errno ? std::strerror(errno) : "unexpected end of file");
  for (size_t k = 0; k < sizes.size(); ++k)
    if (sizes[k] < 0) fail(path, ": sequence ", begin + k, " has a negative length ", sizes[k]);
  return sizes;
}

// The checks IndexHeader makes (magic, version, dtype, .idx size against its counts, the last
// sequence ending exactly at the end of the .bin), with a few preads instead of a mapping.
void probe_file(const std::string& prefix, uint64_t& sequences, TokenDType& dtype, uint64_t& fingerprint) {
  const std::string idx_path = prefix + ".idx", bin_path = prefix + ".bin";
  int fd = ::open(idx_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(idx_path, ": cannot open: ", std::strerror(errno));
  FdCloser closer{fd};
  const uint64_t idx_size = file_size(idx_path);
  uint8_t h[kIdxHeaderBytes];
  if (idx_size < kIdxHeaderBytes || !pread_all(fd, h, sizeof h, 0))
    fail(idx_path, ": ", idx_size, " bytes is too short for an MMIDIDX header (34 bytes)");
  static constexpr char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};
  if (std::memcmp(h, kMagic, 9) != 0)
    fail(idx_path, ": not a Megatron MMIDIDX index (bad magic); expected a .idx written by Megatron-LM or agpt");
  uint64_t version, docs;
  std::memcpy(&version, h + 9, 8);
  if (version != 1) fail(idx_path, ": MMIDIDX version ", version, " (only version 1 is supported)");
  if (!dtype_code_valid(h[17])) fail(idx_path, ": unknown dtype code ", int(h[17]));
  dtype = static_cast<TokenDType>(h[17]);
  std::memcpy(&sequences, h + 18, 8);
  std::memcpy(&docs, h + 26, 8);
  using u128 = unsigned __int128;
  const u128 expected = u128(kIdxHeaderBytes) + u128(sequences) * 12 + u128(docs) * 8;
  if (expected != idx_size)
    fail(idx_path, ": size ", idx_size, " bytes does not match its header (", sequences, " sequences, ", docs,
         " document bounds need ", static_cast<uint64_t>(expected), " bytes); the file is truncated or corrupt");
  if (sequences >= (uint64_t(1) << 31))
    fail(idx_path, ": ", sequences, " sequences exceed Megatron's int32 document ids");
  const uint64_t bin_size = file_size(bin_path);
  const uint64_t itemsize = dtype_size(dtype);
  if (sequences > 0) {
    int32_t last_size;
    int64_t last_pointer;
    if (!pread_all(fd, &last_size, 4, kIdxHeaderBytes + (sequences - 1) * 4) ||
        !pread_all(fd, &last_pointer, 8, kIdxHeaderBytes + sequences * 4 + (sequences - 1) * 8))
      fail(idx_path, ": unexpected end of file");
    if (last_size < 0 || last_pointer < 0 ||
        u128(last_pointer) + u128(last_size) * itemsize != u128(bin_size))
      fail(bin_path, ": ", bin_size, " bytes, but ", idx_path, " says its last sequence ends at byte ",
           static_cast<int64_t>(last_pointer + int64_t(last_size) * int64_t(itemsize)),
           "; the .bin is truncated or belongs to another .idx");
  } else if (bin_size != 0) {
    fail(bin_path, ": ", bin_size, " bytes, but ", idx_path, " lists no sequences");
  }
  // A cheap fingerprint, as Mixture's: the header, both file sizes, the first and last 4 KiB of the
  // .idx (hashing whole multi-GB indices would take minutes).
  uint64_t fp = hash_bytes(h, sizeof h, idx_size);
  fp = mix64(fp ^ bin_size);
  char block[4096];
  const uint64_t n = std::min<uint64_t>(sizeof block, idx_size - kIdxHeaderBytes);
  if (n > 0) {
    if (!pread_all(fd, block, n, kIdxHeaderBytes)) fail(idx_path, ": unexpected end of file");
    fp = hash_bytes(block, n, fp);
    if (!pread_all(fd, block, n, idx_size - n)) fail(idx_path, ": unexpected end of file");
    fp = hash_bytes(block, n, fp);
  }
  fingerprint = fp;
}

struct GptPlan {
  uint32_t source;
  uint64_t doc_begin, doc_end, num_samples;
};

// GPTDataset._build_document_sample_shuffle_indices with add_extra_token_to_sequence = 1 and
// drop_last_partial_sequence = True.
void build_gpt(const std::string& prefix, const GptPlan& plan, uint64_t seq_len, uint32_t seed,
               MegatronDatasetInfo& info, MegatronGptIndex& index) {
  info.source = plan.source;
  info.doc_begin = plan.doc_begin;
  info.doc_end = plan.doc_end;
  info.num_samples = plan.num_samples;
  const IndexVector<int32_t> sizes = read_sizes(prefix, plan.doc_begin, plan.doc_end);
  const uint64_t docs = sizes.size();
  uint64_t tokens = 0;
  for (int32_t s : sizes) tokens += static_cast<uint64_t>(s);
  info.tokens_per_epoch = tokens;
  if (tokens < 2)
    fail(prefix, ": ", tokens, " tokens in documents [", plan.doc_begin, ", ", plan.doc_end,
         ") of its split; Megatron's GPTDataset cannot draw samples from it (give the file a larger share "
         "of --split or leave it out of the list)");
  // Epochs: the fewest with epochs * tokens >= num_samples * seq_len + 1.
  using u128 = unsigned __int128;
  const u128 wanted = u128(plan.num_samples) * seq_len + 1;
  const u128 epochs128 = std::max<u128>(1, (wanted + tokens - 1) / tokens);
  if (epochs128 * docs >= (u128(1) << 32) || epochs128 * tokens >= (u128(1) << 62))
    fail(prefix, ": ", static_cast<uint64_t>(epochs128), " epochs of ", docs,
         " documents exceed the 32-bit document index (Megatron's int32 arrays)");
  const uint64_t epochs = static_cast<uint64_t>(epochs128);
  info.num_epochs = epochs;
  info.separate_final_epoch = false;
  info.samples_sans_final_epoch = 0;
  if (epochs > 1) {
    const uint64_t sans_final = ((epochs - 1) * tokens - 1) / seq_len;
    const int64_t from_final = static_cast<int64_t>(plan.num_samples) - static_cast<int64_t>(sans_final);
    const uint64_t per_epoch = (tokens - 1) / seq_len;
    const int64_t threshold = static_cast<int64_t>(0.80 * static_cast<double>(per_epoch));  // int(0.80 * x)
    info.separate_final_epoch = from_final < threshold;
    if (info.separate_final_epoch) info.samples_sans_final_epoch = sans_final;
  }

  NumpyRandomState rng(seed);
  // Document index: the split's sequence ids, epoch after epoch, shuffled as one array; or the
  // first epochs - 1 shuffled, then the final epoch shuffled on its own (same generator).
  index.document_index.resize(epochs * docs);
  int32_t* di = index.document_index.data();
  for (uint64_t e = 0; e < epochs; ++e)
    for (uint64_t k = 0; k < docs; ++k) di[e * docs + k] = static_cast<int32_t>(plan.doc_begin + k);
  if (info.separate_final_epoch) {
    rng.shuffle(di, (epochs - 1) * docs);
    rng.shuffle(di + (epochs - 1) * docs, docs);
  } else {
    rng.shuffle(di, epochs * docs);
  }

  // Sample index (helpers.cpp build_sample_idx): consecutive samples share one token, so sample s
  // starts at token s * seq_len of the shuffled document stream; recorded as (position, offset) of
  // the document holding that token (documents of no tokens hold none), which is where Megatron's
  // loop over the documents of each sample ends. One pass over the documents, branch-free where a
  // document holds at most one sample start.
  const uint64_t total = (epochs * tokens - 1) / seq_len;
  if (total >= 0xffffffffull - 1) fail(prefix, ": ", total, " samples in one GPTDataset exceed the 32-bit shuffle index");
  info.total_samples = total;
  index.sample_index.resize(2 * (total + 1));
  uint32_t* si = index.sample_index.data();
  const uint64_t positions = epochs * docs;
  si[0] = 0;
  si[1] = 0;
  {
    const int32_t* size_of = sizes.data() - plan.doc_begin;  // indexed by sequence id
    uint64_t s = 1, next = seq_len, begin = 0;  // next: the first token of sample s
    constexpr uint64_t kAhead = 16;  // the lengths are read in shuffled order: fetch them ahead
    for (uint64_t pos = 0; pos < positions && s <= total; ++pos) {
      if (pos + kAhead < positions) __builtin_prefetch(size_of + di[pos + kAhead]);
      const uint64_t end = begin + static_cast<uint64_t>(size_of[di[pos]]);
      si[2 * s] = static_cast<uint32_t>(pos);  // written at s, kept only if sample s starts here
      si[2 * s + 1] = static_cast<uint32_t>(next - begin);
      const uint64_t here = next < end ? 1 : 0;
      s += here;
      next += here * seq_len;
      while (next < end && s <= total) {  // a document longer than seq_len holds more starts
        si[2 * s] = static_cast<uint32_t>(pos);
        si[2 * s + 1] = static_cast<uint32_t>(next - begin);
        ++s;
        next += seq_len;
      }
      begin = end;
    }
    if (s <= total) fail(prefix, ": internal error: the documents end before sample ", s, " of ", total);
  }

  // Shuffle index: arange(total) shuffled; or [0, sans_final) and [sans_final, total) shuffled apart.
  index.shuffle_index.resize(total);
  uint32_t* sh = index.shuffle_index.data();
  for (uint64_t s = 0; s < total; ++s) sh[s] = static_cast<uint32_t>(s);
  if (info.separate_final_epoch) {
    const uint64_t first = std::min(info.samples_sans_final_epoch, total);
    rng.shuffle(sh, first);
    rng.shuffle(sh + first, total - first);
  } else {
    rng.shuffle(sh, total);
  }
}

unsigned checkpoint_shift_for(size_t datasets) {
  unsigned shift = 12;  // 4-byte counts per dataset every 2^shift samples: at most 1 byte per sample
  while ((uint64_t(1) << shift) < 4 * uint64_t(datasets)) ++shift;
  return shift;
}

}  // namespace

std::array<std::optional<std::pair<double, double>>, kNumSplits> megatron_split_matrix(const std::string& split) {
  // parse_and_normalize_split: every run of [.0-9] is a number; pad with zeros to three; normalise.
  std::vector<double> v;
  for (size_t i = 0; i < split.size();) {
    if (!(std::isdigit(static_cast<unsigned char>(split[i])) || split[i] == '.')) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < split.size() && (std::isdigit(static_cast<unsigned char>(split[j])) || split[j] == '.')) ++j;
    std::string token = split.substr(i, j - i);
    char* end = nullptr;
    double x = std::strtod(token.c_str(), &end);
    if (end == token.c_str() || *end != '\0') fail("--split ", split, ": `", token, "` is not a number");
    v.push_back(x);
    i = j;
  }
  if (v.empty()) fail("--split ", split, ": expected up to three numbers, e.g. 969,30,1");
  if (v.size() > size_t(kNumSplits)) fail("--split ", split, ": more than three numbers (train, valid, test)");
  v.resize(kNumSplits, 0.0);
  double total = 0;
  for (double x : v) total += x;
  if (!(total > 0) || !std::isfinite(total)) fail("--split ", split, ": the fractions must not all be zero");
  const std::vector<double> n = numpy_normalize(v);
  // Bookends [0, a, a + b, a + b + c]; a split whose end is not past its start is absent.
  std::array<double, kNumSplits + 1> e{};
  e[0] = 0.0;
  for (int s = 0; s < kNumSplits; ++s) e[s + 1] = e[s] + n[s];
  std::array<std::optional<std::pair<double, double>>, kNumSplits> m;
  for (int s = 0; s < kNumSplits; ++s)
    if (e[s + 1] > e[s]) m[s] = std::make_pair(e[s], e[s + 1]);
  return m;
}

MegatronOrder MegatronOrder::build(const MegatronOrderOptions& options) {
  MegatronOrder o;
  o.options_ = options;
  if (options.seq_len < 1) fail("megatron order: --seq-len must be at least 1");
  if (options.seed > 0xffffffffull)
    fail("megatron order: seed ", options.seed, " does not fit numpy's RandomState (0 to 2^32 - 1)");
  if (!(options.surplus >= 0) || !std::isfinite(options.surplus))
    fail("megatron order: the surplus must be a non-negative number");
  std::vector<double> raw;
  if (!options.list_path.empty()) {
    for (auto& e : parse_data_list(options.list_path)) {
      o.prefixes_.push_back(e.prefix);
      raw.push_back(e.weight);
    }
  } else {
    if (options.prefixes.empty() || options.prefixes.size() != options.weights.size())
      fail("megatron order: give a data file list, or as many weights as prefixes");
    o.prefixes_ = options.prefixes;
    raw = options.weights;
    for (double w : raw)
      if (!(w > 0) || !std::isfinite(w)) fail("megatron order: weight ", w, " must be a positive finite number");
  }
  const size_t S = o.prefixes_.size();
  if (S > 32766) fail("megatron order: ", S, " files; Megatron's BlendedDataset takes fewer than 32,767");
  const uint32_t seed = static_cast<uint32_t>(options.seed);
  const int threads = options.threads > 0 ? options.threads : default_threads();

  o.files_.resize(S);
  for (auto& f : o.files_) f = std::make_unique<File>();
  for (size_t d = 0; d < S; ++d) o.files_[d]->raw_weight = raw[d];
  parallel_for(S, threads, [&](size_t d) {
    File& f = *o.files_[d];
    probe_file(o.prefixes_[d], f.sequences, f.dtype, f.fingerprint);
  });
  for (size_t d = 1; d < S; ++d)
    if (o.files_[d]->dtype != o.files_[0]->dtype)
      o.warnings_.push_back(cat(o.prefixes_[d], ": token dtype ", dtype_name(o.files_[d]->dtype), " differs from ",
                                o.prefixes_[0], " (", dtype_name(o.files_[0]->dtype),
                                "): are the vocabularies the same?"));

  o.weights_ = numpy_normalize(raw);  // the builder's normalize(weights)
  const auto matrix = megatron_split_matrix(options.split);

  // Plan every GPTDataset: the split's documents and the samples asked of it.
  std::vector<std::pair<int, uint32_t>> jobs;  // (split, source)
  std::vector<GptPlan> plans;
  for (int s = 0; s < kNumSplits; ++s) {
    SplitState& st = o.splits_[s];
    const uint64_t N = options.samples[s];
    if (N == 0) continue;
    if (!matrix[s])
      fail("megatron order: ", N, " ", split_name(Split(s)), " samples asked for, but --split ", options.split,
           " gives the ", split_name(Split(s)), " split no documents");
    if (N > (uint64_t(1) << 52)) fail("megatron order: ", N, " samples is too many");
    st.datasets.resize(S);
    st.gpt.resize(S);
    for (uint32_t d = 0; d < S; ++d) {
      MegatronDatasetInfo& info = st.datasets[d];
      // _get_size_per_split_per_dataset: ceil(N * w), then ceil(that * (1 + surplus)).
      info.target = static_cast<uint64_t>(std::ceil(static_cast<double>(N) * o.weights_[d]));
      info.num_samples = static_cast<uint64_t>(std::ceil(static_cast<double>(info.target) * (1.0 + options.surplus)));
      const double elements = static_cast<double>(o.files_[d]->sequences);
      info.source = d;
      info.doc_begin = static_cast<uint64_t>(python_round(matrix[s]->first * elements));
      info.doc_end = static_cast<uint64_t>(python_round(matrix[s]->second * elements));
      st.size += info.target;
      jobs.emplace_back(s, d);
      plans.push_back(GptPlan{d, info.doc_begin, info.doc_end, info.num_samples});
    }
    st.blend_weights = numpy_normalize(o.weights_);  // BlendedDataset normalises once more
    st.checkpoint_shift = checkpoint_shift_for(S);
  }

  // The blends on one thread, the GPTDatasets on all cores beside it (a blend of equal or few
  // distinct weights takes a fraction of a second).
  std::exception_ptr blend_error;
  std::array<std::vector<uint32_t>, kNumSplits> blend_counts;  // written by the blend thread only
  std::thread blend_thread([&] {
    try {
      for (int s = 0; s < kNumSplits; ++s) {
        SplitState& st = o.splits_[s];
        if (st.size == 0) continue;
        if (st.size >= (uint64_t(1) << 32)) fail("megatron order: ", st.size, " samples in one split (at most 2^32 - 1)");
        MegatronBlender blender(st.blend_weights, st.size);
        st.dataset_index.resize(st.size);
        const uint64_t block = uint64_t(1) << st.checkpoint_shift;
        st.checkpoints.assign(((st.size + block - 1) >> st.checkpoint_shift) * S, 0);
        std::vector<uint32_t> counts(S, 0);
        for (uint64_t i = 0; i < st.size; ++i) {
          if ((i & (block - 1)) == 0) std::copy(counts.begin(), counts.end(), st.checkpoints.begin() + (i >> st.checkpoint_shift) * S);
          const uint32_t d = blender.next();
          st.dataset_index[i] = static_cast<uint16_t>(d);
          ++counts[d];
        }
        blend_counts[s] = std::move(counts);
      }
    } catch (...) {
      blend_error = std::current_exception();
    }
  });
  try {
    parallel_for(jobs.size(), threads, [&](size_t j) {
      auto [s, d] = jobs[j];
      SplitState& st = o.splits_[s];
      build_gpt(o.prefixes_[d], plans[j], options.seq_len, seed, st.datasets[d], st.gpt[d]);
    });
  } catch (...) {
    blend_thread.join();
    throw;
  }
  blend_thread.join();
  if (blend_error) std::rethrow_exception(blend_error);
  for (int s = 0; s < kNumSplits; ++s)
    for (size_t d = 0; d < blend_counts[s].size(); ++d) o.splits_[s].datasets[d].used = blend_counts[s][d];

  // Where the greedy blend asks more of a file than its GPTDataset holds, Megatron stops ("The ...
  // blend oversamples ..."). Build that GPTDataset for exactly the samples needed instead.
  std::vector<size_t> redo;
  for (size_t j = 0; j < jobs.size(); ++j) {
    auto [s, d] = jobs[j];
    MegatronDatasetInfo& info = o.splits_[s].datasets[d];
    if (info.used > info.total_samples) {
      o.warnings_.push_back(cat(o.prefixes_[d], ": the ", split_name(Split(s)), " blend draws ", info.used,
                                " samples but its GPTDataset of ", info.num_samples, " requested samples holds ",
                                info.total_samples, " (Megatron-LM stops here: \"blend oversamples\"); built it for ",
                                info.used, " samples instead, as Megatron would with a larger mid_level_dataset_surplus "
                                "for this file"));
      plans[j].num_samples = info.used;
      redo.push_back(j);
    }
  }
  parallel_for(redo.size(), threads, [&](size_t r) {
    auto [s, d] = jobs[redo[r]];
    SplitState& st = o.splits_[s];
    build_gpt(o.prefixes_[d], plans[redo[r]], options.seq_len, seed, st.datasets[d], st.gpt[d]);  // keeps used, target
  });
  return o;
}

const MegatronOrder::SplitState& MegatronOrder::state(Split split) const {
  const SplitState& st = splits_[int(split)];
  if (st.size == 0)
    fail("the Megatron order has no ", split_name(split), " samples (ask for them with --", split_name(split), "-samples)");
  return st;
}

const MegatronGptIndex& MegatronOrder::gpt_index(Split split, uint32_t source) const {
  const SplitState& st = state(split);
  if (source >= st.gpt.size()) fail("source ", source, " out of range (", st.gpt.size(), " files)");
  return st.gpt[source];
}

uint32_t MegatronOrder::dataset_index(Split split, uint64_t index) const {
  const SplitState& st = state(split);
  if (index >= st.size) fail("sample ", index, " is past the ", st.size, " ", split_name(split), " samples");
  return st.dataset_index[index];
}

uint64_t MegatronOrder::dataset_sample_index(Split split, uint64_t index) const {
  const SplitState& st = state(split);
  if (index >= st.size) fail("sample ", index, " is past the ", st.size, " ", split_name(split), " samples");
  const uint16_t d = st.dataset_index[index];
  const uint64_t block = index >> st.checkpoint_shift;
  uint64_t count = st.checkpoints[block * st.datasets.size() + d];
  const uint16_t* p = st.dataset_index.data();
  for (uint64_t i = block << st.checkpoint_shift; i < index; ++i) count += (p[i] == d);
  return count;
}

void MegatronOrder::locate(Split split, uint32_t source, uint64_t dataset_sample, Sample& out) const {
  const SplitState& st = splits_[int(split)];
  const MegatronGptIndex& g = st.gpt[source];
  if (dataset_sample >= g.shuffle_index.size())
    fail(prefixes_[source], ": sample ", dataset_sample, " of its ", split_name(split), " GPTDataset is out of range (",
         g.shuffle_index.size(), " samples)");
  out.source = source;
  out.dataset_sample = dataset_sample;
  out.shuffled = g.shuffle_index[dataset_sample];
  out.pieces.clear();
  const uint64_t p0 = g.sample_index[2 * out.shuffled], o0 = g.sample_index[2 * out.shuffled + 1];
  const uint64_t p1 = g.sample_index[2 * out.shuffled + 2], o1 = g.sample_index[2 * out.shuffled + 3];
  if (p0 == p1) {  // within one document: no need for its length
    out.pieces.push_back(Piece{static_cast<uint64_t>(g.document_index[p0]), o0, o1 + 1 - o0});
    return;
  }
  const IndexHeader& idx = index(source);
  for (uint64_t p = p0; p <= p1; ++p) {
    const uint64_t doc = static_cast<uint64_t>(g.document_index[p]);
    const uint64_t offset = p == p0 ? o0 : 0;
    const uint64_t end = p == p1 ? o1 + 1 : static_cast<uint64_t>(idx.size(doc));
    if (end > offset) out.pieces.push_back(Piece{doc, offset, end - offset});
  }
}

MegatronOrder::Sample MegatronOrder::sample(Split split, uint64_t index) const {
  Sample out;
  sample(split, index, out);
  return out;
}

void MegatronOrder::sample(Split split, uint64_t index, Sample& out) const {
  const uint32_t d = dataset_index(split, index);
  locate(split, d, dataset_sample_index(split, index), out);
}

const IndexHeader& MegatronOrder::index(uint32_t source) const {
  File& f = *files_.at(source);
  std::call_once(f.opened, [&] { f.header = std::make_shared<IndexHeader>(prefixes_[source]); });
  return *f.header;
}

void MegatronOrder::read(const Sample& sample, uint32_t* out) const {
  const IndexHeader& idx = index(sample.source);
  uint64_t at = 0;
  const uint64_t width = options_.seq_len + 1;
  for (const Piece& piece : sample.pieces) {
    if (at + piece.length > width) fail(prefixes_[sample.source], ": sample pieces exceed ", width, " tokens");
    idx.read_tokens(idx.token_offset(piece.document) + piece.offset, piece.length, out + at);
    at += piece.length;
  }
  if (at != width)
    fail(prefixes_[sample.source], ": sample ", sample.dataset_sample, " has ", at, " tokens, not ", width);
}

void MegatronOrder::read(Split split, uint64_t index, uint32_t* out) const { read(sample(split, index), out); }

uint64_t MegatronOrder::memory_bytes() const {
  uint64_t bytes = 0;
  for (const SplitState& st : splits_) {
    bytes += st.dataset_index.capacity() * sizeof(uint16_t) + st.checkpoints.capacity() * sizeof(uint32_t);
    for (const MegatronGptIndex& g : st.gpt)
      bytes += g.document_index.capacity() * sizeof(int32_t) + g.sample_index.capacity() * sizeof(uint32_t) +
               g.shuffle_index.capacity() * sizeof(uint32_t);
  }
  return bytes;
}

MegatronOrder::Cursor::Cursor(const MegatronOrder& order, Split split, uint64_t index)
    : order_(&order), split_(split), index_(index) {
  const SplitState& st = order.state(split);
  if (index > st.size) fail("sample ", index, " is past the ", st.size, " ", split_name(split), " samples");
  const size_t S = st.datasets.size();
  counts_.assign(S, 0);
  if (index == st.size) return;  // at the end: next() refuses
  const uint64_t block = index >> st.checkpoint_shift;
  for (size_t d = 0; d < S; ++d) counts_[d] = st.checkpoints[block * S + d];
  for (uint64_t i = block << st.checkpoint_shift; i < index; ++i) ++counts_[st.dataset_index[i]];
}

MegatronOrder::Sample MegatronOrder::Cursor::next() {
  Sample out;
  next(out);
  return out;
}

void MegatronOrder::Cursor::next(Sample& out) {
  const SplitState& st = order_->state(split_);
  if (index_ >= st.size) fail("sample ", index_, " is past the ", st.size, " ", split_name(split_), " samples");
  const uint32_t d = st.dataset_index[index_++];
  order_->locate(split_, d, counts_[d]++, out);
}

namespace {
constexpr const char* kFormat = "agpt-mixture";
constexpr int kMegatronVersion = 1;

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}
}  // namespace

std::string MegatronOrder::to_json() const {
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["version"] = kMegatronVersion;
  j["order"] = "megatron";
  j["list"] = options_.list_path;
  j["seq_len"] = options_.seq_len;
  j["seed"] = options_.seed;
  j["split"] = options_.split;
  j["surplus"] = options_.surplus;
  for (int s = 0; s < kNumSplits; ++s) {
    j["samples"][split_name(Split(s))] = options_.samples[s];
    j["size"][split_name(Split(s))] = splits_[s].size;
  }
  for (uint32_t d = 0; d < prefixes_.size(); ++d) {
    const File& f = *files_[d];
    nlohmann::ordered_json o;
    o["prefix"] = prefixes_[d];
    o["weight"] = f.raw_weight;
    o["normalized_weight"] = weights_[d];
    o["sequences"] = f.sequences;
    o["dtype"] = dtype_name(f.dtype);
    o["fingerprint"] = hex64(f.fingerprint);
    for (int s = 0; s < kNumSplits; ++s) {
      if (splits_[s].size == 0) continue;
      const MegatronDatasetInfo& i = splits_[s].datasets[d];
      nlohmann::ordered_json p;
      p["documents"] = {i.doc_begin, i.doc_end};
      p["tokens_per_epoch"] = i.tokens_per_epoch;
      p["target"] = i.target;
      p["num_samples"] = i.num_samples;
      p["epochs"] = i.num_epochs;
      p["separate_final_epoch"] = i.separate_final_epoch;
      p["total_samples"] = i.total_samples;
      p["used"] = i.used;
      o["splits"][split_name(Split(s))] = p;
    }
    j["sources"].push_back(o);
  }
  j["warnings"] = warnings_;
  return j.dump(1) + "\n";
}

void MegatronOrder::save(const std::string& dir) const {
  std::filesystem::create_directories(dir);
  write_file_atomic((std::filesystem::path(dir) / "mixture.json").string(), to_json());
}

MegatronOrder MegatronOrder::load(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "mixture.json").string();
  try {
    nlohmann::json j = nlohmann::json::parse(read_file(path));
    if (j.at("format") != kFormat) fail("not an agpt mixture (format ", j.at("format").dump(), ")");
    if (j.value("order", std::string("agpt")) != "megatron") fail("not a Megatron-order mixture (use Mixture::load)");
    if (j.at("version") != kMegatronVersion) fail("Megatron-order plan version ", j.at("version").dump(), " is not supported");
    MegatronOrderOptions opt;
    opt.seq_len = j.at("seq_len").get<uint64_t>();
    opt.seed = j.at("seed").get<uint64_t>();
    opt.split = j.at("split").get<std::string>();
    opt.surplus = j.at("surplus").get<double>();
    for (int s = 0; s < kNumSplits; ++s) opt.samples[s] = j.at("samples").at(split_name(Split(s))).get<uint64_t>();
    std::vector<std::string> fingerprints;
    for (const auto& o : j.at("sources")) {
      opt.prefixes.push_back(o.at("prefix").get<std::string>());
      opt.weights.push_back(o.at("weight").get<double>());
      fingerprints.push_back(o.at("fingerprint").get<std::string>());
    }
    MegatronOrder m = build(opt);
    m.options_.list_path = j.value("list", std::string());
    for (uint32_t d = 0; d < m.prefixes_.size(); ++d)
      if (hex64(m.files_[d]->fingerprint) != fingerprints[d])
        fail(m.prefixes_[d], " changed since the order was planned (fingerprint ", hex64(m.files_[d]->fingerprint),
             ", planned ", fingerprints[d], "); re-run `agpt data mix --order megatron`");
    for (int s = 0; s < kNumSplits; ++s)
      if (m.splits_[s].size != j.at("size").at(split_name(Split(s))).get<uint64_t>())
        fail("the rebuilt ", split_name(Split(s)), " order has ", m.splits_[s].size, " samples, the plan ",
             j.at("size").at(split_name(Split(s))).dump(), "; re-run `agpt data mix --order megatron`");
    return m;
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": malformed mixture plan (", e.what(), "); re-run `agpt data mix --order megatron`");
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
}

std::string MegatronOrder::table() const {
  std::string out;
  char line[512];
  for (int s = 0; s < kNumSplits; ++s) {
    const SplitState& st = splits_[s];
    if (st.size == 0) continue;
    std::snprintf(line, sizeof line, "%s: %llu samples requested, %llu in Megatron's blend (seq_len %llu, seed %llu, split %s)\n",
                  split_name(Split(s)), static_cast<unsigned long long>(options_.samples[s]),
                  static_cast<unsigned long long>(st.size), static_cast<unsigned long long>(options_.seq_len),
                  static_cast<unsigned long long>(options_.seed), options_.split.c_str());
    out += line;
    std::snprintf(line, sizeof line, "  %-40s %10s %21s %14s %10s %10s %7s %10s %10s\n", "file", "weight", "documents",
                  "tokens/epoch", "target", "requested", "epochs", "holds", "drawn");
    out += line;
    for (const MegatronDatasetInfo& i : st.datasets) {
      std::string name = std::filesystem::path(prefixes_[i.source]).filename().string();
      if (name.size() > 40) name = "..." + name.substr(name.size() - 37);
      char docs[64];
      std::snprintf(docs, sizeof docs, "[%llu, %llu)", static_cast<unsigned long long>(i.doc_begin),
                    static_cast<unsigned long long>(i.doc_end));
      std::snprintf(line, sizeof line, "  %-40s %10.6f %21s %14llu %10llu %10llu %6llu%s %10llu %10llu\n", name.c_str(),
                    weights_[i.source], docs, static_cast<unsigned long long>(i.tokens_per_epoch),
                    static_cast<unsigned long long>(i.target), static_cast<unsigned long long>(i.num_samples),
                    static_cast<unsigned long long>(i.num_epochs), i.separate_final_epoch ? "*" : " ",
                    static_cast<unsigned long long>(i.total_samples), static_cast<unsigned long long>(i.used));
      out += line;
    }
  }
  out += "  (* the final epoch is shuffled on its own, as Megatron does below 80% of an epoch)\n";
  for (const auto& w : warnings_) out += "warning: " + w + "\n";
  return out;
}

}  // namespace agpt::dataset
