"""PyTorch's fused attention (SDPA: flash and cuDNN backends) timed on the shapes of the CUDA
issue, forward and forward+backward per layer, bf16, causal, with CUDA events (median of 20).
The peer for agpt's own attention kernels (AGPT_CUDA_PROFILE=1 train_gpu_bench prints theirs).
Run on the GPU machine: python3 bench/torch_attention_peer.py"""
import json
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SHAPES = {"124M": (16, 1024, 12, 12, 64), "1B": (4, 2048, 32, 8, 64), "7B": (1, 4096, 32, 8, 128)}


def timed(fn, reps=20):
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def main():
    print(torch.cuda.get_device_name(), torch.__version__)
    for name, (B, T, H, KV, hd) in SHAPES.items():
        q = torch.randn(B, H, T, hd, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        k = torch.randn(B, KV, T, hd, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        v = torch.randn(B, KV, T, hd, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        dout = torch.randn(B, H, T, hd, device="cuda", dtype=torch.bfloat16)
        # causal attention FLOPs: 4·B·H·T²·hd / 2 forward, 2.5x that backward
        fwd_flops = 4 * B * H * T * T * hd / 2
        for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):
            try:
                with sdpa_kernel(backend):
                    f = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                    fwd = timed(f)
                    out = f()
                    both = timed(lambda: torch.autograd.grad(f(), (q, k, v), dout))
                bwd = both - fwd
                row = {"shape": name, "backend": backend.name, "fwd_ms": round(fwd, 4), "bwd_ms": round(bwd, 4),
                       "fwd_tflops": round(fwd_flops / fwd / 1e9, 1), "bwd_tflops": round(2.5 * fwd_flops / bwd / 1e9, 1)}
            except Exception as e:  # a backend may not support a shape (e.g. GQA)
                row = {"shape": name, "backend": backend.name, "error": str(e).splitlines()[0][:160]}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
