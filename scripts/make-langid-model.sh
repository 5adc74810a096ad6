#!/usr/bin/env bash
# Trains agpt's language-identification model from the translated manual pages that Debian ships,
# and measures it on held-out pages.
#
#   bash scripts/make-langid-model.sh [OUT_DIR]        (default out/langid)
#
# Needs the packages manpages manpages-dev manpages-de manpages-es manpages-fr manpages-it
# manpages-ja manpages-nl manpages-pl manpages-pt-br manpages-ru manpages-zh, which it installs
# through `scripts/install-deps.sh --langid` when they are missing.
#
# Steps: every page of each package becomes one text file (roff requests dropped, escapes
# resolved, see strip_roff below); a page goes to the held-out set when the CRC of its base name
# ends in 0 (mod 10), the same name in every language, so that a page and its translations fall on
# the same side; then `agpt data langid train` on the rest and `agpt data langid eval` on the
# held-out pages, whole and in snippets of 50 and 200 characters.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/langid}
AGPT=${AGPT:-build/agpt}
MAX_BYTES=${MAX_BYTES:-8000000}   # training bytes per language (balances the languages)
[ -x "$AGPT" ] || { echo "error: $AGPT not found: build agpt first (bash scripts/test.sh, or AGPT=path)" >&2; exit 1; }

# language code -> package(s), and the man directory prefix of the language.
declare -A PKGS=(
  [en]="manpages manpages-dev" [de]=manpages-de [es]=manpages-es [fr]=manpages-fr [it]=manpages-it
  [ja]=manpages-ja [nl]=manpages-nl [pl]=manpages-pl [pt]=manpages-pt-br [ru]=manpages-ru [zh]=manpages-zh
)
missing=()
for lang in "${!PKGS[@]}"; do
  for p in ${PKGS[$lang]}; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing the manual pages: ${missing[*]}"
  bash scripts/install-deps.sh --langid
fi

# roff -> plain text, one page on stdin. Requests (lines starting with . or ') are dropped except
# the text-carrying ones (.SH .SS .B .I .BR .IR ...), whose arguments are kept without quotes;
# comments, macro definitions (.de ... ..) and ignored blocks (.ig ... ..) go; font changes, sizes
# and string interpolations are removed; the common named characters become their Unicode form.
strip_roff() {
  perl -CSD -Mutf8 -ne '
    BEGIN { %ch = (co=>"©", aq=>"\x27", lq=>"\x{201C}", rq=>"\x{201D}", dq=>"\"", em=>"—", en=>"–", bu=>"•", hy=>"-",
                   oq=>"\x{2018}", cq=>"\x{2019}", mi=>"-", pl=>"+", rs=>"\\", ti=>"~", ha=>"^", rg=>"®", de=>"°", mu=>"×"); }
    if ($skip) { $skip = 0 if /^\.\.\s*$/; next; }
    if (/^[.\x27]\s*(de|ig|am)\b/) { $skip = 1; next; }
    next if /^[.\x27]\s*\\"/ || /^\\"/;
    if (/^[.\x27]\s*([A-Za-z]+)\s*(.*)$/) {
      ($m, $rest) = ($1, $2);
      next unless $m =~ /^(SH|SS|B|I|BR|BI|IB|IR|RI|RB|SM|SB|UR|MT|Nm|Nd|Sh|Ss)$/;
      $_ = $rest; s/"//g; $_ .= "\n";
    }
    s/\\f(\[[^\]]*\]|\(..|.)//g;
    s/\\s[-+]?\d+//g; s/\\s\[[^\]]*\]//g;
    s/\\\*(\[[^\]]*\]|\(..|.)//g;
    s/\\\((..)/exists $ch{$1} ? $ch{$1} : ""/ge;
    s/\\\[(..)\]/exists $ch{$1} ? $ch{$1} : ""/ge;
    s/\\\[u([0-9A-Fa-f]{4,5})\]/chr(hex($1))/ge;
    s/\\\[[^\]]*\]//g;
    s/\\[-e]/$& eq "\\e" ? "\\" : "-"/ge;
    s/\\[ ~0]/ /g;
    s/\\[&,\/|^%c:!)]//g;
    s/\\"$//;
    s/\\(.)/$1/g;
    print;
  '
}

rm -rf "$OUT/pages"
mkdir -p "$OUT/pages/train" "$OUT/pages/test"
for lang in $(printf '%s\n' "${!PKGS[@]}" | sort); do
  mkdir -p "$OUT/pages/train/$lang" "$OUT/pages/test/$lang"
  for p in ${PKGS[$lang]}; do
    dpkg -L "$p" | grep -E '/usr/share/man/.*\.gz$' | while read -r f; do
      [ -L "$f" ] && continue   # aliases of other pages
      name=$(basename "$f" .gz)
      crc=$(printf '%s' "$name" | cksum | cut -d' ' -f1)
      split="train"; [ $((crc % 10)) -eq 0 ] && split="test"
      dir=$(basename "$(dirname "$(dirname "$f")")")   # fr, ja, zh_CN, zh_TW, or man for English
      # Pages in non-Latin scripts keep only lines with a non-ASCII character: their ASCII-only lines
      # are untranslated English or code (half the 200-character pieces of manpages-zh are).
      if [ "$lang" = ja ] || [ "$lang" = zh ] || [ "$lang" = ru ]; then
        zcat "$f" | strip_roff | perl -ne 'print if /[^\x00-\x7F]/' > "$OUT/pages/$split/$lang/$dir-$name.txt" || true
      else
        zcat "$f" | strip_roff > "$OUT/pages/$split/$lang/$dir-$name.txt" || true
      fi
      # Pages that say nothing in the language (only a .so link or empty) teach nothing.
      [ -s "$OUT/pages/$split/$lang/$dir-$name.txt" ] || rm -f "$OUT/pages/$split/$lang/$dir-$name.txt"
    done
  done
  echo "$lang: $(ls "$OUT/pages/train/$lang" | wc -l) training pages, $(ls "$OUT/pages/test/$lang" | wc -l) held out"
done

args=()
evals=()
for lang in $(printf '%s\n' "${!PKGS[@]}" | sort); do
  args+=(-i "$lang=$OUT/pages/train/$lang/")
  evals+=(-i "$lang=$OUT/pages/test/$lang/")
done
"$AGPT" data langid train "${args[@]}" -o "$OUT/langid.bin" --max-bytes-per-language "$MAX_BYTES"
for snip in 0 200 50; do
  echo "== held-out pages, snippets of $snip characters (0: whole pages)"
  "$AGPT" -q data langid eval -m "$OUT/langid.bin" "${evals[@]}" --snippet-chars "$snip" --report "$OUT/eval-$snip.json"
done
echo "model: $OUT/langid.bin"
