// Where a model to run lives: a Hugging Face model directory (config.json + safetensors), or a
// training run / checkpoint root, resolved to the checkpoint that `checkpoints/latest` names.
#pragma once
#include <string>

namespace agpt::infer {

// path itself when it holds config.json; RUN/checkpoints/<latest> for a run directory RUN;
// ROOT/<latest> for a checkpoint root. Fails (agpt::Error) saying what was looked for.
std::string resolve_model_dir(const std::string& path);

}  // namespace agpt::infer
