// The input files of `agpt data extract`: files, directories (recursively) and glob patterns,
// in a deterministic order, each with the name used in ids and its format.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "curate/extract/file_extract.h"
#include "curate/extract/format.h"

namespace agpt::curate::extract {

// Expands specs in the order given: a directory gives every regular file below it sorted by path
// (bytewise), named relative to it; a glob(3) pattern its matches sorted; a file itself. Formats
// come from the names (or `forced`). Files of unknown format found in directories or globs are
// kept with no format (the report counts them as skipped); a file named directly with an unknown
// format is an Error, as is a spec matching nothing. Paths in `exclude` (the outputs) are left
// out; a file reached twice is kept once.
std::vector<InputEntry> list_inputs(const std::vector<std::string>& specs, std::optional<Format> forced,
                                    const std::vector<std::string>& exclude = {});

}  // namespace agpt::curate::extract
