#!/usr/bin/env bash
# agpt's tokenizers against tiktoken and HF tokenizers on the same text, same machine, same run.
#
#   bench/tokenizer_vs_tiktoken.sh [TEXT_FILE] [TOKENIZER_DIR] [PEER_SCRIPT]
#
# TEXT_FILE      default: the Python 3.11 reST docs (/usr/share/doc/python3.11/html/_sources),
#                concatenated into one file (11 MB; what the peer numbers in the foundation issue used)
# TOKENIZER_DIR  default: $AGPT_TOKENIZERS, else shared/testdata/tokenizers beside or inside the repo
# PEER_SCRIPT    default: shared/peers/tiktoken_baseline.py beside or inside the repo
# Environment:   AGPT_BUILD (build dir, default <repo>/build; tokenizer_encode is built there if
#                missing), THREADS (for the multi-thread line, default all cores), OUT (where the
#                JSON results go, default a temporary directory).
# Prints the JSON lines of both, then a table: MB/s of each side, the ratio, and whether the token
# counts agree (they must: both encode the same documents).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"

find_shared() {  # find_shared RELATIVE_PATH: the first existing of ../shared/X and ./shared/X
  for base in "$repo/../shared" "$repo/shared"; do
    if [ -e "$base/$1" ]; then echo "$(cd "$(dirname "$base/$1")" && pwd)/$(basename "$1")"; return; fi
  done
}

text="${1:-}"
if [ -z "$text" ]; then
  src=/usr/share/doc/python3.11/html/_sources
  if [ ! -d "$src" ]; then
    echo "no TEXT_FILE given and $src is missing (apt-get install python3.11-doc, or pass a file)" >&2
    exit 2
  fi
  text="$out/pydocs.txt"
  find "$src" -name '*.txt' -print0 | sort -z | xargs -0 cat > "$text"
fi
tokdir="${2:-${AGPT_TOKENIZERS:-$(find_shared testdata/tokenizers)}}"
peer="${3:-$(find_shared peers/tiktoken_baseline.py)}"
if [ -z "$tokdir" ] || [ ! -d "$tokdir" ]; then echo "tokenizer directory not found; pass it as the 2nd argument" >&2; exit 2; fi
if [ -z "$peer" ] || [ ! -f "$peer" ]; then echo "peer script not found; pass it as the 3rd argument" >&2; exit 2; fi

build="${AGPT_BUILD:-$repo/build}"
if [ ! -x "$build/tokenizer_encode" ]; then
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DAGPT_TESTS=OFF >/dev/null
  ninja -C "$build" tokenizer_encode
fi

echo "text: $text ($(wc -c < "$text") bytes); tokenizers: $tokdir; machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
echo "--- peer: $peer"
(cd "$out" && OUT="$out" python3 "$peer" "$text" "$tokdir")
echo "--- agpt: $build/tokenizer_encode"
"$build/tokenizer_encode" "$text" --tokenizers "$tokdir" --threads "${THREADS:-$(nproc)}" | tee "$out/agpt_tok.jsonl"

python3 - "$out/tok_anchor.json" "$out/agpt_tok.jsonl" <<'EOF'
import json, sys
peer = json.load(open(sys.argv[1]))
ours = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
pairs = [("r50k_base", "tiktoken_r50k_base"), ("cl100k_base", "tiktoken_cl100k_base"),
         ("o200k_base", "tiktoken_o200k_base"), ("gpt2_dir", "hf_tokenizers_gpt2_single"),
         ("hf_gpt2_json", "hf_tokenizers_gpt2_single")]
print()
print(f"{'agpt tokenizer':<14} {'peer':<26} {'peer MB/s':>10} {'agpt 1T MB/s':>13} {'ratio':>7} {'agpt NT MB/s':>13} {'threads':>8}  tokens")
for mine, theirs in pairs:
    p = peer.get(theirs)
    one = next((o for o in ours if o["tokenizer"] == mine and o["threads"] == 1), None)
    many = next((o for o in ours if o["tokenizer"] == mine and o["threads"] > 1), None)
    if not p or not one:
        continue
    same = "same" if p["tokens"] == one["tokens"] else f"DIFFER ({one['tokens']} vs {p['tokens']})"
    nt = f"{many['MB_per_s']:13.1f} {many['threads']:>8}" if many else f"{'-':>13} {'-':>8}"
    print(f"{mine:<14} {theirs:<26} {p['MB_per_s']:10.1f} {one['MB_per_s']:13.1f} {one['MB_per_s'] / p['MB_per_s']:6.2f}x {nt}  {same}")
EOF
echo "results in $out"
