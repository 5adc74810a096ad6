#!/usr/bin/env python3
"""Check agpt's token ids against Hugging Face `tokenizers` on the same tokenizer.json and text.

Loads TOKENIZER (a tokenizer.json, e.g. one written by `agpt tokenizer train`) with
`tokenizers.Tokenizer.from_file`, encodes every document of TEXT with it, and compares the ids with
IDS, the JSONL that `agpt tokenizer encode` wrote for the same documents (line i of IDS belongs to
document i of TEXT). Prints a summary; exits 1 on any mismatch, 2 on bad input.

TEXT is JSONL (.jsonl/.json/.ndjson, optionally .gz or .zst; the "text" field of each line) or plain
text: one document per line by default (the line without its "\\n"), or the whole file as one
document with --whole-file.

Each IDS line is a JSON array of ints, or an object holding the ids under "ids", "input_ids",
"token_ids" or "tokens".

Hugging Face matches added tokens (e.g. <|endoftext|>) in the text always; agpt only when asked for
special tokens (allow_special), so a document containing special-token text mismatches unless agpt
was asked to match them too. add_special_tokens (the post-processor, e.g. a BOS token) is off unless
--add-special-tokens is given.

Examples:
  python3 tools/check_hf_tokenizer.py tok.json docs.jsonl ids.jsonl
  python3 tools/check_hf_tokenizer.py tok.json lines.txt ids.jsonl --add-special-tokens --show 5
"""
import argparse
import gzip
import io
import json
import sys


def open_text(path):
    """A text stream of path, decompressing .gz / .zst."""
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    if path.endswith(".zst") or path.endswith(".zstd"):
        try:
            import zstandard
        except ImportError:
            raise OSError("reading %s needs the Python package zstandard (pip install zstandard)" % path)
        raw = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"))
        return io.TextIOWrapper(raw, encoding="utf-8", newline="")
    return open(path, "r", encoding="utf-8", newline="")


def is_jsonl(path):
    base = path
    for ext in (".gz", ".zst", ".zstd"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    return base.endswith((".jsonl", ".json", ".ndjson"))


def read_documents(path, whole_file):
    """Yields (where, text) for each document of path."""
    with open_text(path) as f:
        if is_jsonl(path):
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue  # blank lines are not documents (as agpt's reader)
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError("%s:%d: invalid JSON (%s)" % (path, n, e))
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                    raise ValueError("%s:%d: no string field \"text\"" % (path, n))
                yield "%s:%d" % (path, n), obj["text"]
        elif whole_file:
            yield path, f.read()
        else:
            for n, line in enumerate(f, 1):
                if line.endswith("\n"):
                    line = line[:-1]
                yield "%s:%d" % (path, n), line


def read_ids(path):
    """Yields (where, ids) for each non-blank line of path."""
    with open_text(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = "%s:%d" % (path, n)
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError("%s: invalid JSON (%s)" % (where, e))
            if isinstance(obj, dict):
                for key in ("ids", "input_ids", "token_ids", "tokens"):
                    if key in obj:
                        obj = obj[key]
                        break
                else:
                    raise ValueError("%s: no ids field (ids, input_ids, token_ids or tokens)" % where)
            if not isinstance(obj, list) or not all(isinstance(x, int) for x in obj):
                raise ValueError("%s: ids are not a list of integers" % where)
            yield where, obj


def describe_difference(tok, text, ours, theirs):
    """A few lines showing where two id lists first differ."""
    i = 0
    while i < min(len(ours), len(theirs)) and ours[i] == theirs[i]:
        i += 1
    lo = max(0, i - 3)

    def show(ids):
        out = []
        for x in ids[lo : i + 5]:
            piece = tok.id_to_token(x) if 0 <= x < tok.get_vocab_size(with_added_tokens=True) else None
            out.append("%d(%r)" % (x, piece))
        return " ".join(out)

    return [
        "    first difference at token %d (agpt %d tokens, HF %d tokens)" % (i, len(ours), len(theirs)),
        "    agpt: ... " + show(ours),
        "    HF:   ... " + show(theirs),
        "    text: %r" % (text[:200] + ("..." if len(text) > 200 else "")),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tokenizer", help="tokenizer.json")
    ap.add_argument("text", help="the documents (JSONL with a text field, or plain text)")
    ap.add_argument("ids", help="JSONL of ids written by `agpt tokenizer encode`, one line per document")
    ap.add_argument("--whole-file", action="store_true", help="plain TEXT is one document, not one per line")
    ap.add_argument("--add-special-tokens", action="store_true",
                    help="HF encode(add_special_tokens=True): apply the post-processor (e.g. BOS)")
    ap.add_argument("--show", type=int, default=10, help="mismatches to print in detail (default 10)")
    ap.add_argument("--batch", type=int, default=1000, help="documents per HF encode_batch call")
    args = ap.parse_args()

    try:
        import tokenizers
        from tokenizers import Tokenizer
    except ImportError:
        print("error: this check needs the Python package tokenizers (pip install tokenizers)", file=sys.stderr)
        return 2

    try:
        tok = Tokenizer.from_file(args.tokenizer)
    except Exception as e:  # the Rust error says what is wrong with the file
        print("error: HF tokenizers %s cannot load %s: %s" % (tokenizers.__version__, args.tokenizer, e),
              file=sys.stderr)
        return 2

    docs = compared = mismatched = tokens = 0
    shown = 0
    text_bytes = 0
    try:
        doc_iter = read_documents(args.text, args.whole_file)
        ids_iter = read_ids(args.ids)
        done = False
        while not done:
            batch = []
            for _ in range(args.batch):
                doc = next(doc_iter, None)
                ids = next(ids_iter, None)
                if doc is None and ids is None:
                    done = True
                    break
                if doc is None or ids is None:
                    extra = ("documents in " + args.text) if ids is None else ("id lines in " + args.ids)
                    print("error: more %s than the other file holds (after %d pairs)" % (extra, docs + len(batch)),
                          file=sys.stderr)
                    return 2
                batch.append((doc, ids))
            if not batch:
                break
            encodings = tok.encode_batch([d[1] for d, _ in batch], add_special_tokens=args.add_special_tokens)
            for ((where, text), (ids_where, ours)), enc in zip(batch, encodings):
                docs += 1
                compared += 1
                text_bytes += len(text.encode("utf-8", "surrogatepass"))
                theirs = enc.ids
                tokens += len(theirs)
                if ours != theirs:
                    mismatched += 1
                    if shown < args.show:
                        shown += 1
                        print("MISMATCH %s (ids %s)" % (where, ids_where))
                        for line in describe_difference(tok, text, ours, theirs):
                            print(line)
    except (ValueError, UnicodeDecodeError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2

    print("tokenizer %s (HF tokenizers %s, vocab %d)" % (args.tokenizer, tokenizers.__version__,
                                                      tok.get_vocab_size(with_added_tokens=True)))
    print("documents %d (%.1f MB), HF tokens %d" % (docs, text_bytes / 1e6, tokens))
    if mismatched:
        print("FAIL: %d of %d documents differ" % (mismatched, compared))
        return 1
    print("OK: all %d documents have identical ids" % compared)
    return 0


if __name__ == "__main__":
    sys.exit(main())
