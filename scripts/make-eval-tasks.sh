#!/usr/bin/env bash
# Builds the evaluation tasks made from Debian packages (the science tasks in
# examples/tasks/science are written by hand and need nothing):
#   examples/tasks/wordnet/{test,dev,glosses}.jsonl  from wordnet-base (WordNet 3.0 nouns)
# Deterministic: the same files on every run (seed 1234).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f /usr/share/wordnet/data.noun ] || ! command -v python3 >/dev/null; then
  bash scripts/install-deps.sh --demo  # wordnet-base, python3
fi
python3 tools/make_wordnet_task.py --wordnet /usr/share/wordnet --out examples/tasks/wordnet --test 900 --dev 20 --glosses 300 --seed 1234
