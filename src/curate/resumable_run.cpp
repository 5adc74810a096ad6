#include "curate/resumable_run.h"

#include "base/error.h"
#include "base/file.h"
#include "base/log.h"

namespace agpt::curate {

ResumableRun::ResumableRun(std::string command, std::vector<std::string> outputs, Fingerprint fingerprint, bool resume,
                           const std::vector<ProgressInput>& inputs, size_t stop_after_files)
    : command_(std::move(command)),
      outputs_(std::move(outputs)),
      fingerprint_(std::move(fingerprint)),
      stop_after_(stop_after_files) {
  if (outputs_.empty()) fail(command_, ": a resumable run needs an output file");
  for (size_t i = 0; i < outputs_.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (outputs_[i] == outputs_[j]) fail(command_, ": two outputs are the same file ", outputs_[i], "; name them apart");
  const std::string progress = progress_path(outputs_[0]);
  state_.output_sizes.assign(outputs_.size(), 0);
  if (resume) {
    std::vector<std::string> partials;
    for (const auto& o : outputs_) partials.push_back(partial_path(o));
    state_ = load_progress(command_, progress, fingerprint_, inputs, partials);
    for (const auto& n : state_.notes) log_info(n);
    if (!state_.done.empty()) {
      std::string cut;
      for (size_t i = 0; i < outputs_.size(); ++i) cut += cat(i ? ", " : "", partials[i], " at ", state_.output_sizes[i]);
      log_info("resuming: ", state_.done.size(), " of ", inputs.size(), " input files were done; cut ", cut, " bytes");
    }
  } else if (file_exists(progress)) {
    log_info(progress, " from an interrupted run exists; starting again (--resume would continue it)");
  }
}

ResumableRun::~ResumableRun() = default;

void ResumableRun::start(const std::string& header_data) {
  for (size_t i = 0; i < outputs_.size(); ++i)
    outs_.push_back(std::make_unique<ChunkedOutput>(partial_path(outputs_[i]), state_.output_sizes[i], outputs_[i]));
  log_ = std::make_unique<ProgressLog>(progress_path(outputs_[0]), command_, fingerprint_, header_data, state_.done);
}

void ResumableRun::commit(ProgressEntry& e) {
  if (!log_) fail(command_, ": internal error: commit before start");
  e.chunks.clear();
  for (auto& o : outs_) e.chunks.push_back(o->end_chunk());
  log_->append(e);
  if (stop_after_ && ++committed_ >= stop_after_) {
    log_->sync();
    fail("stopped after ", committed_, " input files (--stop-after, for tests); continue with --resume");
  }
}

void ResumableRun::sync() {
  if (log_) log_->sync();
}

void ResumableRun::finish() {
  if (!log_) fail(command_, ": internal error: finish before start");
  for (size_t i = 0; i < outputs_.size(); ++i) outs_[i]->close_and_rename(outputs_[i]);
  log_->close_and_remove();
}

}  // namespace agpt::curate
