"""Time the mini classifier's training in blocks of `fit` steps, with tf.data's autotuning on or off.

    .venv/bin/python notebooks/speed_modes.py                    # float32, autotuning on (tf.data's default)
    .venv/bin/python notebooks/speed_modes.py --autotune off     # what notebook 03's benchmark datasets do
    .venv/bin/python notebooks/speed_modes.py --policy mixed_bfloat16 --autotune off --steps 7

Each block is one `model.fit(dataset, steps_per_epoch=steps, epochs=1)` on a fixed batch of 32 random token ids
(sequence 128) after 3 untimed warm-up steps. Per block it prints one JSON line: seconds per step, the process's
CPU seconds per step, the machine's idle and steal clock ticks (/proc/stat, Linux), and a 2048x2048 float32 matrix
product's GFLOP/s in the same process, and the CPU (helpers.cpu_description: its model, family/model, cores and
whether it has bfloat16 instructions; without them mixed_bfloat16 is emulated, and slower than float32).
With autotuning on, some blocks end late with the CPU idle: tearing down the iterator waits for the tuning
thread's sleep to end (20, 40, 80, ... ms, doubling), so a block's length is rounded up to 20 * (2**k - 1) ms
(5.10 s, 10.22 s, 20.46 s, ...). That is the "bimodal" speed of issue #16; with autotuning off it does not happen.
A benchmark, not a test: it writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# isort: off
import helpers  # noqa: E402  (first: it selects Keras 2 before TensorFlow loads; isort must not move it)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402
# isort: on


def ticks() -> list[int]:
    """The machine's CPU clock ticks: user, nice, system, idle, iowait, irq, softirq, steal."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
    (a @ b).numpy()
    t0 = time.perf_counter()
    for _ in range(repeats):
        c = a @ b
    c.numpy()
    return repeats * 2 * n**3 / (time.perf_counter() - t0) / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="float32", choices=("float32", "mixed_bfloat16", "mixed_float16"))
    parser.add_argument("--autotune", default="on", choices=("on", "off"))
    parser.add_argument("--steps", type=int, default=10, help="fit steps per timed block")
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.blocks < 1:
        parser.error("--steps and --blocks must be at least 1")

    helpers.use_mixed_precision(args.policy)
    helpers.seed_everything(2019)
    model = helpers.build_classifier(helpers.load_bert(seq_len=128, trainable=True))
    model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss="binary_crossentropy")
    vocab_size = len(helpers.load_vocab(helpers.bert_dir()))
    rng = np.random.default_rng(0)
    x = (rng.integers(1, vocab_size, (32, 128)).astype("int32"), np.zeros((32, 128), "int32"))
    y = rng.integers(0, 2, (32, 1)).astype("float32")
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    if args.autotune == "off":
        options = tf.data.Options()
        options.autotune.enabled = False
        data = data.with_options(options)
    for _ in range(3):
        model.train_on_batch(x, y)  # untimed: tracing

    for block in range(args.blocks):
        before, cpu0, t0 = ticks(), time.process_time(), time.perf_counter()
        model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
        seconds, cpu, delta = time.perf_counter() - t0, time.process_time() - cpu0, np.subtract(ticks(), before)
        print(json.dumps({"policy": args.policy, "autotune": args.autotune, "block": block,
                          "seconds": round(seconds, 3), "samples_per_s": round(32 * args.steps / seconds, 1),
                          "cpu_seconds_per_step": round(cpu / args.steps, 3), "idle_ticks": int(delta[3]),
                          "steal_ticks": int(delta[7]), "matmul_gflops": round(matmul_gflops(), 1),
                          **helpers.cpu_description()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
