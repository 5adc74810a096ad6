#!/usr/bin/env bash
# PDF extraction quality of `agpt data extract`, measured: Debian's r-cran-* packages ship their
# vignettes both as PDF and as the LaTeX/Sweave source the PDF was made from. This installs them,
# builds bench/curate_extract_bench.cpp and compares agpt's text of each PDF with agpt's text of
# its source (normalized character edit distance; docs/extract.md has the numbers and the method).
#
#   bash bench/extract_pdf_quality.sh [BUILD_DIR]        (default build-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
packages=(r-cran-lme4 r-cran-ordinal r-cran-zoo r-cran-sandwich r-cran-lmtest r-cran-strucchange r-cran-mvtnorm)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi
cmake -S . -B "$build" -G Ninja -DAGPT_CUDA=OFF -DAGPT_BENCH=ON -DAGPT_TESTS=OFF >/dev/null
ninja -C "$build" curate_extract_bench
for layout in raw reading physical; do
  echo "== --pdf-layout $layout"
  "$build/curate_extract_bench" --layout "$layout" --find /usr/lib/R/site-library
done
