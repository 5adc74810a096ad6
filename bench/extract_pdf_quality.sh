#!/usr/bin/env bash
# PDF extraction quality of `agpt data extract`, measured: Debian's r-cran-* packages ship their
# vignettes both as PDF and as the LaTeX/Sweave source the PDF was made from. This installs them,
# builds bench/curate_extract_bench.cpp and compares agpt's text of each PDF with agpt's text of
# a reference (normalized character edit distance; docs/extract.md has the numbers and the method).
#
#   bash bench/extract_pdf_quality.sh [BUILD_DIR]        (default build-bench)
#
# Two references, both converted to text by agpt's LaTeX extraction:
#  1. the shipped .Rnw source (the columns of the first runs):
#     NED       code chunks dropped (agpt's default for .Rnw) — strict, the PDF's R code and output
#               count as distance;
#     NED+code  code chunks kept as verbatim (also echo=FALSE ones); R's printed output still missing;
#     prose     NED+code's reference without math, [cite] placeholders and heading marks, and the PDF
#               without its bibliography.
#  2. the woven .tex: each .Rnw run through R (tools::buildVignette(latex = FALSE), Sweave or knitr
#     as the vignette says) in a scratch copy of its directory — the file pdflatex typesets, with the
#     echoed code, R's printed output and \Sexpr values; figures, math as glyphs, rendered citations
#     and the bibliography still differ. The R output comes from the R and packages installed here,
#     not those that built the shipped PDF (numbers, versions and timings can differ). Papers whose
#     vignette fails to run here are listed and left out of that mean. For this run NED = NED+code
#     (a .tex has no chunks).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
packages=(r-cran-lme4 r-cran-ordinal r-cran-zoo r-cran-sandwich r-cran-lmtest r-cran-strucchange r-cran-mvtnorm)
# What the vignettes load when they are run (for the woven reference).
weave_packages=(r-cran-tseries r-cran-xtable r-cran-knitr r-cran-chron r-cran-geepack r-cran-aer r-cran-timeseries)
missing=()
for p in "${packages[@]}" "${weave_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi
cmake -S . -B "$build" -G Ninja -DAGPT_CUDA=OFF -DAGPT_BENCH=ON -DAGPT_TESTS=OFF >/dev/null
ninja -C "$build" curate_extract_bench

# The 16 papers (the weave packages bring vignettes of their own, so --find is not used).
lib=/usr/lib/R/site-library
papers=(RcppEigen/RcppEigen-Introduction lme4/Theory lme4/lmer lmtest/lmtest-intro mvtnorm/MVT_Rnews
        ordinal/clm_article ordinal/clmm2_tutorial sandwich/sandwich-CL sandwich/sandwich-OOP sandwich/sandwich
        strucchange/strucchange-intro zoo/zoo-design zoo/zoo-faq zoo/zoo-quickref zoo/zoo-read zoo/zoo)
pairs=()
for p in "${papers[@]}"; do pairs+=("$lib/${p%%/*}/doc/${p#*/}.pdf" "$lib/${p%%/*}/doc/${p#*/}.Rnw"); done
for layout in raw reading physical; do
  echo "== --pdf-layout $layout, reference: the .Rnw source"
  "$build/curate_extract_bench" --layout "$layout" "${pairs[@]}"
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
woven=()
for p in "${papers[@]}"; do
  pkg=${p%%/*} name=${p#*/}
  mkdir -p "$scratch/$pkg"
  [[ -d $scratch/$pkg/doc ]] || cp -r "$lib/$pkg/doc" "$scratch/$pkg/doc"
  if (cd "$scratch/$pkg/doc" && timeout 600 Rscript -e \
        "tools::buildVignette('$name.Rnw', latex = FALSE, tangle = FALSE, clean = FALSE)" >"$scratch/$name.log" 2>&1) &&
     [[ -s $scratch/$pkg/doc/$name.tex ]]; then
    woven+=("$lib/$pkg/doc/$name.pdf" "$scratch/$pkg/doc/$name.tex")
  else
    echo "not woven (left out of the woven mean): $p: $(grep -m1 -i 'error' "$scratch/$name.log" || true)"
  fi
done
echo "== --pdf-layout raw, reference: the woven .tex (code, R output and \\Sexpr values as R printed them here)"
"$build/curate_extract_bench" --layout raw "${woven[@]}"
