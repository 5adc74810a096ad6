# A Megatron-LM indexed dataset (PREFIX.bin/.idx, MMIDIDX version 1) of uniformly random tokens, for
# timing `agpt train` on a GPU machine without a corpus or a tokenizer (bench/train_gpu_speed.sh).
#   python3 bench/random_token_dataset.py PREFIX VOCAB DOCUMENTS TOKENS_PER_DOCUMENT [SEED]
# Token ids are int32 (Megatron's dtype code 4) above 65,535 ids, uint16 (code 8) otherwise.
import random
import struct
import sys

if len(sys.argv) not in (5, 6):
    sys.exit("usage: random_token_dataset.py PREFIX VOCAB DOCUMENTS TOKENS_PER_DOCUMENT [SEED]")
prefix, vocab, docs, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
seed = int(sys.argv[5]) if len(sys.argv) == 6 else 1
if vocab < 2 or docs < 1 or length < 1:
    sys.exit("VOCAB must be at least 2, DOCUMENTS and TOKENS_PER_DOCUMENT at least 1")
code, fmt, width = (8, "H", 2) if vocab <= 65536 else (4, "i", 4)
rng = random.Random(seed)
with open(prefix + ".bin", "wb") as f:
    for _ in range(docs):
        f.write(struct.pack("<%d%s" % (length, fmt), *(rng.randrange(vocab) for _ in range(length))))
with open(prefix + ".idx", "wb") as f:
    f.write(b"MMIDIDX\x00\x00")
    f.write(struct.pack("<QBQQ", 1, code, docs, docs + 1))
    f.write(struct.pack("<%di" % docs, *([length] * docs)))
    f.write(struct.pack("<%dq" % docs, *(i * length * width for i in range(docs))))
    f.write(struct.pack("<%dq" % (docs + 1), *range(docs + 1)))
print("%s.bin/.idx: %d documents of %d random tokens below %d" % (prefix, docs, length, vocab))
