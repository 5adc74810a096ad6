#!/usr/bin/env bash
# Real-data speed of the curation pipeline: extract (HTML) -> filter -> dedup -> decontaminate, on
# the HTML documentation Debian ships for the Linux kernel and SageMath. Per stage: documents in
# and out, MB in, wall seconds, CPU seconds (user + sys, /usr/bin/time), MB/s per core (MB in / CPU
# seconds), peak RSS; dedup also as 1 process with -j 1 and -j N and as `mpirun -np 2` (-j 1 per
# rank), whose output must be identical; MinHash signature throughput (bench/curate_dedup_bench on
# the extracted text). Prints a Markdown table and /proc/loadavg before and after every stage.
#
# Installs nothing. Needs the Debian packages linux-doc (-> linux-doc-6.1, HTML under
# /usr/share/doc/linux-doc-6.1/html), sagemath-doc (HTML under /usr/share/doc/sagemath/html),
# openmpi-bin (mpirun), time (/usr/bin/time) and python3 (the summary), and an agpt built with
# AGPT_BENCH=ON (for curate_dedup_bench beside it):
#
#   apt-get install -y linux-doc sagemath-doc
#   cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DAGPT_BENCH=ON && ninja -C build agpt curate_dedup_bench
#   bench/curate_real_docs.sh build/agpt /tmp/curate_real
#
# Environment: THREADS (default: nproc) threads of the -j stages; INPUTS (space-separated
# directories; default the two above, whichever exist); BENCHMARKS (default examples/tasks/science).
set -euo pipefail

AGPT=$(realpath "${1:-build/agpt}")
WORK=${2:-/tmp/agpt_curate_real}
THREADS=${THREADS:-$(nproc)}
BENCH_DIR=${BENCHMARKS:-examples/tasks/science}
DEDUP_BENCH=$(dirname "$AGPT")/curate_dedup_bench
[[ -x $AGPT ]] || { echo "no agpt at $AGPT" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
if [[ -z ${INPUTS:-} ]]; then
  INPUTS=""
  for d in /usr/share/doc/linux-doc-6.1/html /usr/share/doc/sagemath/html; do [[ -d $d ]] && INPUTS+=" $d"; done
fi
[[ -n ${INPUTS// /} ]] || { echo "no input: apt-get install linux-doc sagemath-doc, or set INPUTS" >&2; exit 1; }
mkdir -p "$WORK"
rm -rf "${WORK:?}"/*
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

# The HTML pages only (the Sphinx _sources/*.txt copies and scripts are left out).
mapfile -t PAGES < <(find $INPUTS -name '*.html' -type f | LC_ALL=C sort)
mapfile -t BENCHES < <(find "$BENCH_DIR" -name '*.jsonl' -type f | LC_ALL=C sort)
BENCH_LIST=$(IFS=,; echo "${BENCHES[*]}")
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; threads $THREADS"
echo "agpt: $AGPT ($(cd "$(dirname "$0")/.." && git rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "inputs:$INPUTS: ${#PAGES[@]} HTML pages; benchmarks: ${#BENCHES[@]} files"

STATS=$WORK/stages.tsv
: > "$STATS"
# measure NAME INPUT_BYTES REPORT -- command...: runs it under /usr/bin/time, appends a line to STATS.
measure() {
  local name=$1 bytes=$2 report=$3
  shift 4
  local before after
  before=$(cut -d' ' -f1-3 /proc/loadavg)
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.txt" "$@" > "$WORK/$name.log" 2>&1 ||
    { echo "stage $name failed:" >&2; tail -20 "$WORK/$name.log" >&2; exit 1; }
  after=$(cut -d' ' -f1-3 /proc/loadavg)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$bytes" "$report" "$(tail -1 "$WORK/time.txt")" "$before" "$after" >> "$STATS"
  echo "  $name: $(tail -1 "$WORK/time.txt") (wall user sys maxrss_kB); load $before -> $after"
}
size() { stat -c %s "$@" | awk '{s += $1} END {print s}'; }

HTML_BYTES=$(printf '%s\0' "${PAGES[@]}" | du -cb --files0-from=- | tail -1 | cut -f1)
measure extract "$HTML_BYTES" "$WORK/extract.json" -- \
  "$AGPT" data extract -i "${PAGES[@]}" -o "$WORK/extracted.jsonl" --report "$WORK/extract.json" -j "$THREADS"
measure filter "$(size "$WORK/extracted.jsonl")" "$WORK/filter.json" -- \
  "$AGPT" data filter -i "$WORK/extracted.jsonl" -o "$WORK/filtered.jsonl" --report "$WORK/filter.json" -j "$THREADS"
FILTERED=$(size "$WORK/filtered.jsonl")
measure dedup_j1 "$FILTERED" "$WORK/dedup_j1.json" -- \
  "$AGPT" data dedup -i "$WORK/filtered.jsonl" -o "$WORK/dedup_j1.jsonl" --report "$WORK/dedup_j1.json" -j 1
measure dedup "$FILTERED" "$WORK/dedup.json" -- \
  "$AGPT" data dedup -i "$WORK/filtered.jsonl" -o "$WORK/dedup.jsonl" --report "$WORK/dedup.json" -j "$THREADS"
if command -v mpirun > /dev/null; then
  # /usr/bin/time sees mpirun and its children (both ranks): CPU is the sum, RSS the largest process.
  measure dedup_mpi2 "$FILTERED" "$WORK/dedup_mpi2.json" -- \
    mpirun -np 2 --oversubscribe --bind-to none "$AGPT" data dedup -i "$WORK/filtered.jsonl" \
    -o "$WORK/dedup_mpi2.jsonl" --report "$WORK/dedup_mpi2.json" -j 1
  cmp "$WORK/dedup.jsonl" "$WORK/dedup_mpi2.jsonl" && echo "  dedup: 2 MPI ranks wrote the same bytes as 1 process"
fi
cmp "$WORK/dedup.jsonl" "$WORK/dedup_j1.jsonl" && echo "  dedup: -j 1 and -j $THREADS wrote the same bytes"
measure decontaminate "$(size "$WORK/dedup.jsonl")" "$WORK/decontam.json" -- \
  "$AGPT" data decontaminate -b "$BENCH_LIST" -i "$WORK/dedup.jsonl" -o "$WORK/clean.jsonl" \
  --report "$WORK/decontam.json" -j "$THREADS"

# The filter keeps a quarter of this reference documentation, too little text to time dedup's
# scaling: the same on the whole extracted text (every page, unfiltered).
EXTRACTED=$(size "$WORK/extracted.jsonl")
measure dedup_all_j1 "$EXTRACTED" "$WORK/dedup_all_j1.json" -- \
  "$AGPT" data dedup -i "$WORK/extracted.jsonl" -o "$WORK/dedup_all_j1.jsonl" --report "$WORK/dedup_all_j1.json" -j 1
if command -v mpirun > /dev/null; then
  measure dedup_all_mpi2 "$EXTRACTED" "$WORK/dedup_all_mpi2.json" -- \
    mpirun -np 2 --oversubscribe --bind-to none "$AGPT" data dedup -i "$WORK/extracted.jsonl" \
    -o "$WORK/dedup_all_mpi2.jsonl" --report "$WORK/dedup_all_mpi2.json" -j 1
  cmp "$WORK/dedup_all_j1.jsonl" "$WORK/dedup_all_mpi2.jsonl" && echo "  dedup (all): 2 MPI ranks wrote the same bytes as 1 process"
fi
measure decontaminate_all "$EXTRACTED" "$WORK/decontam_all.json" -- \
  "$AGPT" data decontaminate -b "$BENCH_LIST" -i "$WORK/extracted.jsonl" -o "$WORK/clean_all.jsonl" \
  --report "$WORK/decontam_all.json" -j "$THREADS"

python3 - "$STATS" <<'EOF'
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
print("\n| stage | docs in | docs out | MB in | wall s | CPU s | MB/s per core | docs/s per core | peak RSS MB | load before -> after |")
print("|---|---|---|---|---|---|---|---|---|---|")
for name, nbytes, report, t, before, after in rows:
    wall, user, sys_, rss = t.split()
    r = json.load(open(report))
    if name == "extract":  # files in, documents out
        din, dout = r["total"]["files"], r["total"]["documents"]
    elif name.startswith("decontaminate"):  # documents in, documents and fragments out
        din, dout = r["documents_in"], r["lines_out"]
    else:
        din, dout = r["documents_in"], r["documents_kept"]
    name = {"dedup": "dedup -j N", "dedup_j1": "dedup -j 1", "dedup_mpi2": "dedup mpirun -np 2 (-j 1 each)",
            "dedup_all_j1": "dedup, all extracted, -j 1", "dedup_all_mpi2": "dedup, all extracted, mpirun -np 2",
            "decontaminate_all": "decontaminate, all extracted"}.get(name, name)
    cpu = float(user) + float(sys_)
    mb = int(nbytes) / 1e6
    per_doc = f"{float(din) / cpu:.0f}" if isinstance(din, int) and cpu > 0 else "?"
    print(f"| {name} | {din} | {dout} | {mb:.1f} | {float(wall):.2f} | {cpu:.2f} | {mb / cpu:.1f} | {per_doc} | "
          f"{int(rss) / 1024:.0f} | {before} -> {after} |")
EOF

if [[ -x $DEDUP_BENCH ]]; then
  echo
  echo "MinHash on the filtered, then the whole extracted text ($DEDUP_BENCH, thread CPU time, best of 3):"
  "$DEDUP_BENCH" "$WORK/filtered.jsonl"
  "$DEDUP_BENCH" "$WORK/extracted.jsonl"
  echo "load: $(cat /proc/loadavg)"
fi
