#!/usr/bin/env python3
"""Build the WordNet evaluation task for `agpt eval`: pick the word for a definition.

Reads the WordNet 3.0 database of Debian's `wordnet-base` package (/usr/share/wordnet: data.noun,
index.noun) and writes JSONL items into examples/tasks/wordnet/ (test.jsonl, dev.jsonl), next to
the task file wordnet_science_nouns.yaml:

  {"id": "wn-01234567", "category": "animal", "definition": "...",
   "choices": ["...", "...", "...", "..."], "answer": 2, "answer_text": "..."}

Also glosses.jsonl for the perplexity task wordnet_glosses.yaml: {"text": "WORD: GLOSS"} for
--glosses (300) synsets of the same categories that the rules below leave out of the test and dev
items (rarer words or senses), full glosses with their examples.

Which synsets: nouns of the lexicographer files of the natural sciences (animal, plant, body,
substance, natural object, phenomenon, process, quantity), whose word is a single lowercase
word of 3 to 14 letters that appears in WordNet's sense-tagged corpus (tagsense_cnt > 0: a word
people use) and for which this synset is its most frequent noun sense (the definition is what the
word usually means). The
definition is the gloss up to its first ';' (examples removed); glosses that contain the word are
skipped. Distractors: 3 other such words of the same lexicographer file, none a synonym of the
answer. Everything is drawn with random.Random(--seed), so the output is the same on every run.

Usage: tools/make_wordnet_task.py [--wordnet /usr/share/wordnet] [--out examples/tasks/wordnet]
                                  [--test 900] [--dev 20] [--glosses 300] [--seed 1234]
"""
import argparse
import json
import os
import random
import re
import sys

CATEGORIES = {5: "animal", 8: "body", 17: "natural object", 19: "phenomenon", 20: "plant",
              22: "process", 23: "quantity", 27: "substance"}
WORD = re.compile(r"^[a-z]{3,14}$")


def read_index(path):
    """lemma -> (tagged sense count, offset of its most frequent noun sense)."""
    senses = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):  # the licence header
                continue
            p = line.split()
            p_cnt = int(p[3])
            senses[p[0]] = (int(p[5 + p_cnt]), p[6 + p_cnt])
    return senses


def read_synsets(path):
    """(offset, lex file number, [lemmas], gloss) for each noun synset."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):
                continue
            head, _, gloss = line.partition(" | ")
            p = head.split()
            n = int(p[3], 16)
            lemmas = [p[4 + 2 * i].lower() for i in range(n)]
            out.append((p[0], int(p[1]), lemmas, gloss.strip()))
    return out


def definition(gloss):
    d = gloss.split(";")[0].strip()
    return d if 15 <= len(d) <= 160 and '"' not in d else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wordnet", default="/usr/share/wordnet")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "examples", "tasks", "wordnet"))
    ap.add_argument("--test", type=int, default=900)
    ap.add_argument("--dev", type=int, default=20)
    ap.add_argument("--glosses", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    for name in ("data.noun", "index.noun"):
        if not os.path.exists(os.path.join(a.wordnet, name)):
            sys.exit(f"{a.wordnet}/{name} not found: install Debian's wordnet-base (apt-get install wordnet-base)")
    senses = read_index(os.path.join(a.wordnet, "index.noun"))
    items = []  # (offset, lex, word, synonyms, definition, gloss)
    others = []  # synsets of the same categories for glosses.jsonl: (offset, word, gloss)
    for offset, lex, lemmas, gloss in read_synsets(os.path.join(a.wordnet, "data.noun")):
        if lex not in CATEGORIES:
            continue
        word = lemmas[0]
        tagged, first = senses.get(word, (0, ""))
        d = definition(gloss)
        if not WORD.match(word) or tagged == 0 or first != offset or d is None or re.search(r"\b" + re.escape(word), d.lower()):
            if re.match(r"^[a-z][a-z_-]*$", word):
                others.append((offset, word.replace("_", " "), gloss))
            continue
        items.append((offset, lex, word, set(lemmas), d, gloss))
    rnd = random.Random(a.seed)
    rnd.shuffle(items)
    by_lex = {}
    for it in items:
        by_lex.setdefault(it[1], []).append(it[2])
    need = a.test + a.dev
    if len(items) < need or len(others) < a.glosses:
        sys.exit(f"only {len(items)} usable synsets (--test + --dev = {need}) and {len(others)} others (--glosses)")
    docs = []
    for offset, lex, word, synonyms, d, _ in items[:need]:
        pool = [w for w in by_lex[lex] if w != word and w not in synonyms]
        choices = rnd.sample(pool, 3) + [word]
        rnd.shuffle(choices)
        docs.append({"id": "wn-" + offset, "category": CATEGORIES[lex], "definition": d,
                     "choices": choices, "answer": choices.index(word), "answer_text": word})
    os.makedirs(a.out, exist_ok=True)
    for split, part in (("test", docs[:a.test]), ("dev", docs[a.test:])):
        with open(os.path.join(a.out, split + ".jsonl"), "w", encoding="utf-8") as f:
            for x in part:
                f.write(json.dumps(x, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "glosses.jsonl"), "w", encoding="utf-8") as f:
        for offset, word, gloss in rnd.sample(others, a.glosses):
            f.write(json.dumps({"id": "wn-" + offset, "text": word + ": " + gloss}, ensure_ascii=False) + "\n")
    print(f"{len(items)} usable synsets; wrote {a.test} test, {a.dev} dev and {a.glosses} gloss items to "
          f"{os.path.normpath(a.out)}")


if __name__ == "__main__":
    main()
