# One configuration of the PyTorch baseline (../shared/peers/torch_llama_baseline.py, used as it
# is), so that bench/gpu_vs_torch.sh can alternate agpt and PyTorch one run at a time.
#   python3 bench/torch_llama_one.py PEERS_DIR 1B 4 2048 compiled|eager
# Prints the baseline's JSON line for that run.
import sys

if len(sys.argv) != 6 or sys.argv[5] not in ("compiled", "eager"):
    sys.exit("usage: torch_llama_one.py PEERS_DIR 124M|1B BATCH SEQ compiled|eager")
sys.path.insert(0, sys.argv[1])
from torch_llama_baseline import run  # noqa: E402

run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "compiled")
