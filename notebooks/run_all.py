"""Execute the notebooks headlessly, in order, and report the time and peak memory of each.

    python notebooks/run_all.py                 # full profile, every notebook
    python notebooks/run_all.py --quick         # the tests' quick profile (TUTORIAL_QUICK=1)
    python notebooks/run_all.py --profile workshop  # the workshop profile (TUTORIAL_PROFILE=workshop)
    python notebooks/run_all.py 01 03           # only notebooks whose names start with these
    python notebooks/run_all.py --readme        # regenerate README.md's table and figure from the results

Each notebook runs on a fresh kernel and its executed copy goes to outputs/executed/, so the
committed notebooks stay untouched; `--inplace` rewrites the committed notebooks instead (for
maintainers refreshing their stored outputs, on purpose). The measurements are written to
outputs/metrics/run_all-<profile>.json. A notebook that fails stops the run with its error.
`--readme` runs nothing: it rewrites the table between README.md's notebook-table markers from those
files (keeping the current cell where a notebook has no record for a profile) and the results block
between its results markers from notebook 03's results file, and copies the figure of the committed
notebooks' cell tagged "readme-figure" to notebooks/figures/.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent
ROOT = NOTEBOOKS.parent
README = ROOT / "README.md"
TABLE_START, TABLE_END = "<!-- notebook-table:start -->", "<!-- notebook-table:end -->"
RESULTS_START, RESULTS_END = "<!-- results:start -->", "<!-- results:end -->"
FIGURES = NOTEBOOKS / "figures"  # the README's figure, copied from the committed notebooks' stored output
METRICS = ROOT / "outputs" / "metrics"  # run_all-<profile>.json, and notebook 03's results file
PROFILES = ("full", "workshop", "quick")  # as helpers.PROFILES (this script runs without importing helpers)
PEAK_MEMORY_PROBE = ("import resource, sys\n"
                     "_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
                     "print(_peak * (1 if sys.platform == 'darwin' else 1024))")  # bytes


def execute(path: Path, timeout: int) -> tuple[nbformat.NotebookNode, float, int]:
    """Run one notebook on a fresh kernel; return it, its wall time in seconds and peak RSS in bytes."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_MEMORY_PROBE))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
    except Exception:  # keep what ran: a failure after hours of training should not lose the outputs
        nb.cells.pop()
        partial = ROOT / "outputs" / "executed" / f"{path.stem}.failed.ipynb"
        partial.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, partial)
        print(f"{path.name}: the cells that ran, with their outputs, are in {partial.relative_to(ROOT)}",
              file=sys.stderr)
        raise
    seconds = time.perf_counter() - start
    probe = nb.cells.pop()
    peak = int(probe.outputs[0]["text"].strip())
    return nb, seconds, peak




def previous_cells(table: str) -> dict[str, list[str]]:
    """The minutes and memory cells of a notebook table that readme_table wrote, by notebook file name: three
    minutes, then peak memory in the full and the workshop profile (a table from before the workshop memory
    column gets a dash there)."""
    cells = {}
    for line in table.splitlines():
        parts = [part.strip() for part in line.strip().strip("|").split("|")]
        if len(parts) in (6, 7) and "](notebooks/" in parts[0]:
            cells[parts[0].split("](notebooks/", 1)[1].rstrip(")")] = (parts[2:] + ["–"])[:5]
    return cells


def readme_table(previous: str = "") -> str:
    """The README's notebook table, from the run records in outputs/metrics/. Where a profile of a notebook
    has no record (it was not run on this machine), the cell of the `previous` table is kept, or a dash."""
    runs = {}
    for profile in PROFILES:
        path = METRICS / f"run_all-{profile}.json"
        runs[profile] = json.loads(path.read_text())["notebooks"] if path.exists() else {}
    kept = previous_cells(previous)
    lines = ["| notebook | topic | minutes, full | minutes, workshop | minutes, quick | peak memory (GB), full "
             "| peak memory (GB), workshop |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        title = next(c.source for c in nb.cells if c.cell_type == "markdown").splitlines()[0].lstrip("# ")
        number, topic = title.split(" · ", 1) if " · " in title else (path.name[:2], title)
        old = kept.get(path.name, ["–"] * 5)
        full = runs["full"].get(path.name)
        minutes = [f"{run['seconds'] / 60:.1f}" if run else old[i]
                   for i, run in enumerate(runs[p].get(path.name) for p in PROFILES)]
        record = ROOT / "data" / "mini-bert-zh" / "pretraining_run.json"
        if path.name.startswith("05") and full and record.exists():  # its full run resumes a finished run
            pretraining = json.loads(record.read_text())["training_seconds"] / 60
            minutes[0] += f" + {pretraining:.0f} of pretraining[^pretraining]"
        memory = [f"{run['peak_memory_bytes'] / 1e9:.1f}" if run else old[3 + i]
                  for i, run in enumerate(runs[p].get(path.name) for p in ("full", "workshop"))]
        lines.append(f"| [{number}](notebooks/{path.name}) | {topic} | {' | '.join(minutes)} | {' | '.join(memory)} |")
    return "\n".join(lines)




def readme_figure() -> Path:
    """Copy the PNG output of the committed notebooks' cell tagged "readme-figure" for the README."""
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if "readme-figure" in cell.get("metadata", {}).get("tags", []):
                images = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
                if not images:
                    raise SystemExit(f"{path.name}: the readme-figure cell has no stored PNG output; run it first")
                FIGURES.mkdir(exist_ok=True)
                target = FIGURES / f"{path.stem}.png"
                target.write_bytes(base64.b64decode(images[-1]))
                return target
    raise SystemExit("no notebook has a cell tagged readme-figure")




def results_block() -> str:
    """The README's results, from notebook 03's full-profile results file."""
    sys.path.insert(0, str(ROOT))
    import helpers  # here, not at the top: it loads TensorFlow, which running notebooks does not need

    path = helpers.results_path(quick=False)
    if not path.exists():
        raise SystemExit(f"{path.relative_to(ROOT)} is missing: run notebook 03 in the full profile first")
    r = json.loads(path.read_text())
    if r["profile"] != "full":
        raise SystemExit(f"{path.relative_to(ROOT)} is not from the full profile")
    models = {"bert": "pretrained mini BERT", "tfidf_logreg": "TF-IDF logistic regression",
              "bag_of_chars": "bag of characters", "scratch": "same BERT, random init"}
    curve = r["sample_efficiency"]
    sizes = sorted(curve, key=int)

    def cell(entry):
        low, high = entry["ci95"]
        return f"{entry['accuracy']:.3f} ± {(high - low) / 2:.3f}"

    lines = ["| test accuracy | " + " | ".join(models.values()) + " |", "| --- |" + " ---: |" * len(models)]
    for n in sizes:
        label = f"all {int(n):,} train reviews" if n == sizes[-1] else f"{int(n):,} labelled reviews"
        lines.append(f"| {label} | " + " | ".join(cell(curve[n][m]) for m in models) + " |")
    verdicts = "; ".join(f"{models[m]}: {v}" for m, v in r["verdicts"].items())
    wilson, agree = [], []  # the exceptions to "across seeds", named from the results themselves
    for n in sizes:
        for m in models:
            amount = "all reviews" if n == sizes[-1] else f"{int(n):,} labelled reviews"
            e, where = curve[n][m], f"the {models[m]} on {amount}"
            if e["ci95_method"] != "seeds":
                wilson.append(f"{where} ({len(e['seeds'])} seed{'s' * (len(e['seeds']) > 1)})")
            elif len(set(e["seeds"])) == 1:
                agree.append(where)
    methods = f"Mean over {len(r['seeds'])} seeds ± half the width of a 95% interval across seeds (Student t)"
    if wilson:
        methods += f"; over test reviews (Wilson) for {' and '.join(wilson)}"
    if agree:
        methods += (f"; {' and '.join(agree)} gave the same accuracy with every seed (a deterministic fit), so the "
                    f"interval over seeds is zero")
    lines += ["", f"{methods}. "
              f"Paired tests on the same test reviews (McNemar and a paired bootstrap, every seed), pretrained "
              f"mini BERT against {verdicts}. Peak learning rate {r['learning_rate']:g}, chosen on validation "
              f"reviews from {', '.join(r['learning_rate_sweep'])}.{policy_sentence(r)}"]
    speed, base = r["throughput_samples_per_s"], r["bert_base_cpu"]
    base_policy = f" under `{r['policy']}`, the notebook's policy" if "policy" in r else ""  # not always float32
    lines += ["", f"Fine-tuning speed on the 2-core CPU, in training samples per second: float32 "
              f"{speed['float32']:.0f}, XLA {speed['xla']:.0f}, `mixed_bfloat16` {speed['mixed_bfloat16']:.0f}, "
              f"`mixed_float16` {speed['mixed_float16']:.0f} (medians of {len(r['throughput_repeats']['float32'])} "
              f"timed blocks{bf16_ratio(r)}); {matmul_sentence(r)}"
              f"one epoch over the train split takes about {r['epoch_seconds'] / 60:.1f} minutes (float32). "
              f"Google's BERT-base architecture ({base['parameters']:,} parameters) trains at "
              f"{base['samples_per_s']:.1f} samples per second on the same CPU{base_policy}: about "
              f"{base['epoch_seconds'] / 3600:.1f} hours per epoch. Notebook 03 took "
              f"{r['wall_seconds'] / 60:.0f} minutes up to its results file (the exercises add the rest of "
              f"the table's time). Mean test F1 of the fine-tuned model: {r['test']['bert']['f1']:.3f}."]
    return "\n".join(lines)


def policy_sentence(r: dict) -> str:
    """The precision the fine-tuning runs trained in, and the CPU that chose it ("auto" picks mixed_bfloat16 on
    a CPU with bfloat16 instructions, float32 on one without), when the results file records them."""
    if "policy" not in r:  # results files written before notebook 03 recorded its policy
        return ""
    if "cpu" not in r:
        return f" Fine-tuned under `{r['policy']}`."
    cpu = r["cpu"]
    return (f" Fine-tuned under `{r['policy']}` on a CPU {'with' if cpu['bfloat16'] else 'without'} bfloat16 "
            f"instructions ({cpu['cpu']}, family/model {cpu['family_model']}, {cpu['cores']} cores).")


def bf16_ratio(r: dict) -> str:
    """The paired bfloat16/float32 ratio of notebook 03's timing rounds, when the results file has it."""
    if "bfloat16_speedup" not in r:  # results files written before the rounds were paired
        return ""
    g = r["bfloat16_speedup"]
    return (f", taken in rounds; `mixed_bfloat16` over float32 within a round: {g['mean']:.2f} times, "
            f"95% interval {g['low']:.2f} to {g['high']:.2f}")


def matmul_sentence(r: dict) -> str:
    """What the run's CPU does in bfloat16 by itself (notebook 03's large matrix product), when recorded: a CPU
    without bfloat16 instructions emulates them, and `mixed_bfloat16` cannot pay there."""
    if "matmul_gflops" not in r:  # results files written before notebook 03 timed the product
        return ""
    m = r["matmul_gflops"]
    return (f"the same CPU multiplies two 2048 × 2048 matrices at {m['float32']:.0f} GFLOP/s in float32 and "
            f"{m['bfloat16']:.0f} in bfloat16 ({'with' if m['bfloat16'] > m['float32'] else 'without'} a gain from "
            f"bfloat16 arithmetic itself); ")


def replace_between(text: str, start: str, end: str, body: str) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def update_readme() -> None:
    figure = readme_figure()
    print(f"README figure copied from the stored outputs to {figure.relative_to(ROOT)}")
    text = README.read_text(encoding="utf-8")
    current = text.split(TABLE_START, 1)[-1].split(TABLE_END, 1)[0]
    text = replace_between(text, TABLE_START, TABLE_END, readme_table(current))
    text = replace_between(text, RESULTS_START, RESULTS_END, results_block())
    README.write_text(text, encoding="utf-8")
    print("README.md notebook table and results regenerated")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prefixes", nargs="*", help="run only notebooks whose file names start with these")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--profile", choices=PROFILES, default="full",
                        help="full (default), workshop (about 10 minutes per notebook) or quick (the tests')")
    chosen.add_argument("--quick", action="store_true", help="the same as --profile quick (TUTORIAL_QUICK=1)")
    parser.add_argument("--inplace", action="store_true", help="overwrite the committed notebooks with the run")
    parser.add_argument("--timeout", type=int, default=-1, help="seconds per cell (default: no limit)")
    parser.add_argument("--readme", action="store_true",
                        help="run nothing; rewrite README.md's notebook table (from outputs/metrics/run_all-*.json) "
                             "and results block (from notebook 03's full-profile results file), and copy the "
                             "figure of the cell tagged readme-figure to notebooks/figures/")
    args = parser.parse_args(argv)
    if args.readme:
        update_readme()
        return 0

    profile = "quick" if args.quick else args.profile
    os.environ["TUTORIAL_QUICK"] = "1" if profile == "quick" else "0"
    os.environ["TUTORIAL_PROFILE"] = profile
    paths = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")
                   if not args.prefixes or any(p.name.startswith(x) for x in args.prefixes))
    if not paths:
        parser.error(f"no notebook in {NOTEBOOKS} starts with {args.prefixes}")
    executed = ROOT / "outputs" / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    results = {"profile": profile, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "notebooks": {}}
    METRICS.mkdir(parents=True, exist_ok=True)
    out = METRICS / f"run_all-{profile}.json"
    print(f"{'notebook':<32} {'minutes':>8} {'peak GB':>8}   ({profile} profile)")
    for path in paths:
        try:
            nb, seconds, peak = execute(path, args.timeout)
        except Exception as error:  # report which notebook failed, then stop (the ones before it are recorded)
            print(f"{path.name}: FAILED\n{error}", file=sys.stderr)
            return 1
        nbformat.write(nb, path if args.inplace else executed / path.name)
        # recorded as soon as it ran, so that a later notebook's failure does not lose hours of measurement
        previous = json.loads(out.read_text()) if out.exists() else {"notebooks": {}}
        results["notebooks"] = {**previous.get("notebooks", {}), **results["notebooks"],
                                path.name: {"seconds": round(seconds, 1), "peak_memory_bytes": peak}}
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"{path.name:<32} {seconds / 60:8.1f} {peak / 1e9:8.2f}", flush=True)
    print(f"total {sum(r['seconds'] for r in results['notebooks'].values()) / 60:.1f} minutes; "
          f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
