#!/usr/bin/env bash
# Installs every Debian package agpt needs to build, test and run its default pipeline.
# Usage: scripts/install-deps.sh [--demo] [--langid]   (--demo: the bundled corpus; --langid: the
# language-identification model's training text)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libsimdjson-dev
  zlib1g-dev libzstd-dev libpcre2-dev libutf8proc-dev
  libopenblas-dev libtomlplusplus-dev libxxhash-dev
  libopenmpi-dev openmpi-bin libyaml-cpp-dev libpoppler-cpp-dev libxml2-dev
)
for opt in "$@"; do
  case "$opt" in
    # The default corpus (Python 3.11's reStructuredText documentation) and the WordNet evaluation task.
    --demo) packages+=(python3.11-doc wordnet-base python3) ;;
    # Translated manual pages: the training text of the language-identification model
    # (scripts/make-langid-model.sh).
    --langid) packages+=(manpages manpages-dev manpages-de manpages-es manpages-fr manpages-it manpages-ja
                         manpages-nl manpages-pl manpages-pt-br manpages-ru manpages-zh) ;;
    *) echo "usage: scripts/install-deps.sh [--demo] [--langid]" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
