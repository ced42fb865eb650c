"""Measure a GPU machine for the series before a workshop: `make gpu-check` (or run this file).

Prints the GPU TensorFlow sees and the CUDA and cuDNN versions it was built with, then times training
steps of the mini model (the embedded checkpoint, or BERT_DIR) and of Google's BERT-base architecture
under float32, float32 with XLA, mixed_float16 and, on compute capability 8.0 or later (Ampere),
mixed_bfloat16, with the peak GPU memory of each. It writes everything to
outputs/metrics/gpu_check.json. Without a GPU it says so and exits with status 2: it never reports a
number it did not measure on a GPU.

`--device CPU:0` runs the same measurements on the CPU; that is how the tests check this script, and
the file then names the CPU as the device.

    python notebooks/gpu_check.py                      # GPU:0, batch 32, sequence length 128
    python notebooks/gpu_check.py --batch-size 16 --seq-len 256 --models mini
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import helpers  # noqa: E402  (before TensorFlow: it selects Keras 2)

tf, keras = helpers.tf, helpers.keras

POLICIES = {"float32": ("float32", False), "xla": ("float32", True), "mixed_float16": ("mixed_float16", False),
            "mixed_bfloat16": ("mixed_bfloat16", False)}


def build(name: str, seq_len: int, bert_dir: Path | None) -> keras.Model:
    if name == "mini":
        return helpers.build_classifier(helpers.load_bert(seq_len=seq_len, trainable=True, folder=bert_dir))
    import keras_bert

    body, _ = keras_bert.build_model_from_config(str(helpers.GOOGLE_CHINESE_CONFIG), seq_len=seq_len, trainable=True)
    return helpers.build_classifier(body)


def measure(name: str, config: str, device: str, steps: int, batch_size: int, seq_len: int,
            bert_dir: Path | None) -> dict:
    """Training samples per second over `steps` timed steps after two untimed ones, and the peak memory."""
    policy, jit = POLICIES[config]
    helpers.use_mixed_precision(policy)
    try:
        with tf.device(device):
            model = build(name, seq_len, bert_dir)
            model.compile(optimizer=keras.optimizers.AdamW(1e-5), loss="binary_crossentropy", jit_compile=jit)
            rng = np.random.default_rng(0)  # random token ids: the speed does not depend on the text
            ids = rng.integers(5, model.get_layer("Embedding-Token").input_dim, (2 * batch_size, seq_len))
            data = tf.data.Dataset.from_tensor_slices(
                ((ids, np.zeros_like(ids)), rng.integers(0, 2, (2 * batch_size, 1)).astype("float32")))
            data = data.batch(batch_size).repeat()
            model.fit(data, steps_per_epoch=2, verbose=0)  # tracing, compilation, autotuning
            on_gpu = device.startswith("GPU")
            if on_gpu:
                tf.config.experimental.reset_memory_stats(device)
            start = time.perf_counter()
            model.fit(data, steps_per_epoch=steps, verbose=0)
            seconds = time.perf_counter() - start
            peak = tf.config.experimental.get_memory_info(device)["peak"] if on_gpu else None
        return {"samples_per_s": steps * batch_size / seconds, "peak_memory_bytes": peak}
    except tf.errors.ResourceExhaustedError:
        return {"error": "out of memory: try a smaller --batch-size or --seq-len"}
    finally:
        helpers.use_mixed_precision("float32")
        keras.backend.clear_session()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="GPU:0", help="GPU:0 (default), or CPU:0 to test this script")
    parser.add_argument("--models", nargs="+", choices=("mini", "bert-base"), default=["mini", "bert-base"])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--output", type=Path, default=helpers.OUTPUTS_DIR / "metrics" / "gpu_check.json")
    args = parser.parse_args(argv)
    gpus = tf.config.list_physical_devices("GPU")
    if args.device.startswith("GPU") and not gpus:
        print("No GPU is visible to TensorFlow (tf.config.list_physical_devices('GPU') is empty), so there is "
              "nothing to measure. Check `nvidia-smi`, and that TensorFlow was installed with "
              "`pip install \"tensorflow[and-cuda]\"` (README, GPU notes). On a CPU, notebook 03's speed "
              "section measures this machine.", file=sys.stderr)
        return 2
    build_info = tf.sysconfig.get_build_info()
    report = {"device": args.device, "tensorflow": tf.__version__, "cuda": build_info.get("cuda_version"),
              "cudnn": build_info.get("cudnn_version"), "batch_size": args.batch_size, "seq_len": args.seq_len,
              "steps": args.steps, "results": {}}
    configs = ["float32", "xla", "mixed_float16", "mixed_bfloat16"]
    if args.device.startswith("GPU"):
        details = tf.config.experimental.get_device_details(gpus[int(args.device.split(":")[1])])
        report["name"], capability = details.get("device_name"), details.get("compute_capability", (0, 0))
        report["compute_capability"] = list(capability)
        if tuple(capability) < (8, 0):
            configs.remove("mixed_bfloat16")  # no bfloat16 tensor cores before Ampere
    print(f"{report.get('name', args.device)}: TensorFlow {report['tensorflow']}, CUDA {report['cuda']}, "
          f"cuDNN {report['cudnn']}; batch {args.batch_size}, sequence length {args.seq_len}")
    for name in args.models:
        for config in configs:
            result = measure(name, config, args.device, args.steps, args.batch_size, args.seq_len, helpers.bert_dir())
            report["results"].setdefault(name, {})[config] = result
            memory = result.get("peak_memory_bytes")
            print(f"  {name:9} {config:15} " + (result["error"] if "error" in result else
                  f"{result['samples_per_s']:8.1f} samples/s" + (f", peak {memory / 1e9:.2f} GB" if memory else "")),
                  flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
