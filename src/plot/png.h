// PNG encoding of an RGB canvas: 8-bit truecolour, no interlace, one IDAT compressed with zlib.
#pragma once
#include <string>

#include "plot/canvas.h"

namespace agpt::plot {

// The bytes of a PNG file. Deterministic: the same pixels give the same bytes (filter type 0 on
// every row, fixed compression level, no timestamps).
std::string encode_png(const Canvas& canvas);

}  // namespace agpt::plot
