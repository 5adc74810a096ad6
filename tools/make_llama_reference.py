#!/usr/bin/env python3
"""Write a PyTorch reference for a Hugging Face Llama checkpoint, for `agpt model verify`.

    python3 tools/make_llama_reference.py MODEL_DIR OUT_DIR [--batch 2] [--seq 16] [--steps 5]
    agpt model verify --model MODEL_DIR --reference OUT_DIR/reference.safetensors

OUT_DIR/reference.safetensors holds (the layout of ../shared/testdata/llama-ref):
  input_ids        int64 [B, T], random ids from --seed
  logits           float32 [B, T, vocab] of the checkpoint's weights
  grad.<name>      the gradient of every parameter for the loss below
  final.<name>     every parameter after --steps AdamW steps on the same batch (none if --steps 0)
OUT_DIR/reference.json holds the loss, the loss and the global gradient norm (before clipping) of
each step, and the optimizer settings.

Loss: transformers' labels=input_ids, i.e. mean cross-entropy over the B*(T-1) positions, position t
predicting input_ids[:, t+1]. Optimizer: torch.optim.AdamW, weight decay only on parameters with 2
or more dimensions, global gradient-norm clipping before each step; step k uses the gradient at the
weights after k steps. Everything runs in float32 (bf16/fp16 checkpoints are upcast); on CUDA, TF32
is switched off. The file is about 2x the fp32 model size (grad + final) plus B*T*vocab*4 bytes.
"""
import argparse
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", help="Hugging Face Llama checkpoint (config.json + safetensors)")
    ap.add_argument("out_dir", help="where reference.safetensors and reference.json go")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5, help="AdamW steps (0: logits and gradients only)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--betas", type=float, nargs=2, default=[0.9, 0.95])
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0, help="global gradient-norm clip (0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = ap.parse_args()
    if args.batch < 1 or args.seq < 2:
        sys.exit("need --batch >= 1 and --seq >= 2 (the loss predicts token t+1 from token t)")

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32).to(args.device)
    model.train()  # Llama has no dropout by default; train mode matches a training step
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(args.seed)
    input_ids = torch.randint(0, vocab, (args.batch, args.seq), generator=gen).to(args.device)

    # named_parameters() lists a tied lm_head once, as model.embed_tokens.weight (agpt does the same).
    params = dict(model.named_parameters())
    tensors = {"input_ids": input_ids.cpu()}

    out = model(input_ids=input_ids, labels=input_ids)
    out.loss.backward()
    loss = out.loss.item()
    tensors["logits"] = out.logits.detach().float().cpu().contiguous()
    for name, p in params.items():
        tensors["grad." + name] = p.grad.detach().cpu().contiguous()

    train_losses, grad_norms = [], []
    if args.steps > 0:
        decay = [p for p in params.values() if p.ndim >= 2]
        no_decay = [p for p in params.values() if p.ndim < 2]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=args.lr, betas=tuple(args.betas), eps=args.eps)
        for _ in range(args.steps):
            opt.zero_grad(set_to_none=True)
            out = model(input_ids=input_ids, labels=input_ids)
            out.loss.backward()
            train_losses.append(out.loss.item())
            norm = torch.nn.utils.clip_grad_norm_(list(params.values()), args.clip if args.clip > 0 else float("inf"))
            grad_norms.append(norm.item())
            opt.step()
        for name, p in params.items():
            tensors["final." + name] = p.detach().cpu().contiguous()

    os.makedirs(args.out_dir, exist_ok=True)
    save_file(tensors, os.path.join(args.out_dir, "reference.safetensors"), metadata={"format": "pt"})
    info = {
        "loss": loss,
        "train_losses": train_losses,
        "grad_norms_before_clip": grad_norms,
        "B": args.batch,
        "T": args.seq,
        "loss_definition": "mean cross-entropy over all B*(T-1) positions, position t predicts input_ids[:, t+1]",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": args.device,
    }
    if args.steps > 0:
        info["optimizer"] = {
            "type": "AdamW", "lr": args.lr, "betas": list(args.betas), "eps": args.eps,
            "weight_decay": args.weight_decay,
            "weight_decay_applies_to": "parameters with 2 or more dimensions",
            "grad_clip_global_norm": args.clip, "steps": args.steps,
        }
    with open(os.path.join(args.out_dir, "reference.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(f"loss {loss:.6f}; wrote {len(tensors)} tensors to {args.out_dir}/reference.safetensors")


if __name__ == "__main__":
    main()
