#!/usr/bin/env python3
"""Compare agpt's log-likelihoods with Hugging Face transformers' for the same requests.

  agpt eval --model DIR --tasks physics_mc --dump-requests requests.jsonl
  python3 tools/eval_vs_transformers.py --model DIR --requests requests.jsonl [--device cuda] [--dtype float32]

Each line of requests.jsonl (written by --dump-requests) holds the context and continuation text,
agpt's token ids for them (context_ids, continuation_ids) and agpt's summed log-probability
(logprob). This script runs the same token ids through transformers' LlamaForCausalLM (the model
directory must be in Hugging Face layout: config.json + safetensors, as agpt's checkpoints are),
exactly as lm-evaluation-harness does: input = (context + continuation)[-(max_length+1):][:-1],
log_softmax over the vocabulary, summed at the continuation's positions. It prints the largest
absolute difference and how many requests differ in their greedy flag, and, with --check-tokens,
whether transformers' tokenizer gives the same ids as agpt for the text (lm-eval's split: whole =
encode(context + continuation), continuation = whole[len(encode(context)):]).
Exit status 1 when the largest difference exceeds --tolerance.
"""
import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="Hugging Face model directory (agpt checkpoint)")
    ap.add_argument("--requests", required=True, help="JSONL written by agpt eval --dump-requests")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--max-length", type=int, default=0, help="0: the model's max_position_embeddings")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--limit", type=int, default=0, help="compare the first N requests only")
    ap.add_argument("--tolerance", type=float, default=1e-3)
    ap.add_argument("--check-tokens", action="store_true", help="also compare tokenization with AutoTokenizer")
    a = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    reqs = []
    with open(a.requests, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                reqs.append(json.loads(line))
    if a.limit:
        reqs = reqs[: a.limit]
    if not reqs:
        sys.exit("no requests in " + a.requests)
    dtype = getattr(torch, a.dtype)
    # transformers 4.56 renamed torch_dtype to dtype (the old name still works there, with a warning).
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    kw = {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}
    model = AutoModelForCausalLM.from_pretrained(a.model, **kw).to(a.device).eval()
    L = a.max_length or model.config.max_position_embeddings

    rows = []
    for r in reqs:
        whole = r["context_ids"] + r["continuation_ids"]
        whole = whole[-(L + 1):]
        inp = whole[:-1]
        k = min(len(r["continuation_ids"]), len(inp))
        rows.append((inp, whole[len(whole) - k:], r))
    max_diff, worst, greedy_diff = 0.0, None, 0
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
    with torch.no_grad():
        for s in range(0, len(order), a.batch_size):
            idx = order[s:s + a.batch_size]
            T = max(len(rows[i][0]) for i in idx)
            ids = torch.zeros((len(idx), T), dtype=torch.long)
            for b, i in enumerate(idx):
                ids[b, :len(rows[i][0])] = torch.tensor(rows[i][0])
            # Right padding: causal attention keeps the real tokens' logits unchanged.
            logits = model(ids.to(a.device)).logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            for b, i in enumerate(idx):
                inp, targets, r = rows[i]
                n, k = len(inp), len(targets)
                if k == 0:
                    lp, greedy = 0.0, True
                else:
                    pos = logp[b, n - k:n]
                    t = torch.tensor(targets, device=pos.device)
                    lp = pos.gather(1, t[:, None]).sum().item()
                    greedy = bool((pos.argmax(dim=-1) == t).all().item())
                d = abs(lp - r["logprob"])
                if d > max_diff:
                    max_diff, worst = d, (r, lp)
                greedy_diff += greedy != r["is_greedy"]
    print(f"requests: {len(rows)}; max |agpt - transformers| log-likelihood: {max_diff:.3g}; "
          f"greedy flags that differ: {greedy_diff}")
    if worst:
        r, lp = worst
        print(f"largest at task {r['task']} doc {r['doc']} choice {r['choice']}: agpt {r['logprob']:.6f}, "
              f"transformers {lp:.6f}")

    if a.check_tokens:
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(a.model)
        mismatches = 0
        for r in reqs:
            if not r["context"] and not r["continuation"]:
                continue  # rolling windows carry ids only
            ctx, cont = r["context"], r["continuation"]
            n = len(ctx) - len(ctx.rstrip())
            if n:
                ctx, cont = ctx[:-n], ctx[-n:] + cont
            whole = tok.encode(ctx + cont, add_special_tokens=False)
            c = tok.encode(ctx, add_special_tokens=False) if ctx else r["context_ids"]
            if (c, whole[len(c):] if ctx else tok.encode(cont, add_special_tokens=False)) != (r["context_ids"], r["continuation_ids"]):
                mismatches += 1
        print(f"tokenization: {mismatches} of {len(reqs)} requests differ from transformers' tokenizer")
    sys.exit(1 if max_diff > a.tolerance else 0)


if __name__ == "__main__":
    main()
