"""notebooks/run_all.py turns notebook 03's results file into the README's results block, and keeps what
a failing notebook ran."""

import json
import sys
import uuid

import pytest

import helpers

sys.path.insert(0, str(helpers.ROOT / "notebooks"))
import run_all  # noqa: E402


def entry(seeds, ci95, method="seeds"):
    return {"accuracy": sum(seeds) / len(seeds), "seeds": seeds, "ci95": ci95, "ci95_method": method}


SPEED = {"float32": 50.0, "xla": 60.0, "mixed_bfloat16": 55.0, "mixed_float16": 40.0}


def results(profile="full"):
    row = {"bert": entry([0.80, 0.82, 0.84], [0.77, 0.87]),
           "tfidf_logreg": entry([0.86] * 3, [0.86, 0.86]),
           "bag_of_chars": entry([0.83, 0.84, 0.85], [0.81, 0.87]),
           "scratch": entry([0.79], [0.77, 0.81], "test reviews")}
    return {"profile": profile, "seeds": [1, 2, 3], "learning_rate": 1e-4,
            "learning_rate_sweep": {"3e-05": 0.8, "0.0001": 0.82, "0.0003": 0.81},
            "verdicts": {"tfidf_logreg": "worse", "bag_of_chars": "indistinguishable here", "scratch": "better"},
            "test": {"bert": {**row["bert"], "f1": 0.825}}, "sample_efficiency": {"250": row, "13889": row},
            "throughput_samples_per_s": SPEED, "throughput_repeats": {k: [v - 1, v, v + 2] for k, v in SPEED.items()},
            "epoch_seconds": 300.0, "bert_base_cpu": {"parameters": 101_382_913, "samples_per_s": 3.0,
                                                       "epoch_seconds": 4600.0}, "wall_seconds": 3600.0}


@pytest.fixture()
def results_file(monkeypatch):
    """A results file inside the repository (run_all names it relative to the root), in git-ignored outputs/."""
    path = helpers.ROOT / "outputs" / "tests" / f"03_training-{uuid.uuid4().hex}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(helpers, "results_path", lambda quick=False: path)
    yield path
    path.unlink(missing_ok=True)


def test_results_block_shows_mean_and_half_width_for_every_model(results_file):
    results_file.write_text(json.dumps(results()))
    block = run_all.results_block()
    assert "| 250 labelled reviews | 0.820 ± 0.050 | 0.860 ± 0.000 | 0.840 ± 0.030 | 0.790 ± 0.020 |" in block
    assert block.splitlines()[3].startswith("| all 13,889 train reviews |")
    assert "TF-IDF logistic regression: worse" in block
    assert "chosen on validation reviews from 3e-05, 0.0001, 0.0003" in block
    assert "Mean test F1 of the fine-tuned model: 0.825" in block
    assert "`mixed_bfloat16` 55, `mixed_float16` 40 (medians of 3 timed blocks); " in block  # no rounds recorded


def test_results_block_gives_the_paired_bfloat16_ratio_when_recorded(results_file):
    results_file.write_text(json.dumps({**results(), "bfloat16_speedup": {"mean": 1.3333, "low": 1.21, "high": 1.469,
                                                                         "per_round": [1.3, 1.4, 1.3]}}))
    assert ("(medians of 3 timed blocks, taken in rounds; `mixed_bfloat16` over float32 within a round: 1.33 times, "
            "95% interval 1.21 to 1.47); ") in run_all.results_block()


def test_results_block_says_what_the_cpu_gains_from_bfloat16_when_recorded(results_file):
    """Whether `mixed_bfloat16` can pay depends on the CPU: the block gives the run's own matrix-product rates."""
    for rates, verdict in (({"float32": 200.0, "bfloat16": 380.0}, "with"), ({"float32": 90.0, "bfloat16": 20.0},
                                                                            "without")):
        results_file.write_text(json.dumps({**results(), "matmul_gflops": rates}))
        assert (f"the same CPU multiplies two 2048 × 2048 matrices at {rates['float32']:.0f} GFLOP/s in float32 and "
                f"{rates['bfloat16']:.0f} in bfloat16 ({verdict} a gain from bfloat16 arithmetic itself); one epoch"
                ) in run_all.results_block()


def test_results_block_names_the_precision_and_the_cpu_that_chose_it(results_file):
    """Notebook 03's "auto" trains in mixed_bfloat16 on a CPU with bfloat16 instructions, float32 without."""
    results_file.write_text(json.dumps(results()))  # an older file: neither recorded
    assert "Fine-tuned under" not in run_all.results_block()
    assert "trains at 3.0 samples per second on the same CPU: about" in run_all.results_block()
    results_file.write_text(json.dumps({**results(), "policy": "float32"}))
    assert "from 3e-05, 0.0001, 0.0003. Fine-tuned under `float32`.\n" in run_all.results_block()
    # BERT-base is timed under the notebook's policy too, so its figure says which
    assert "trains at 3.0 samples per second on the same CPU under `float32`, the notebook's policy: about" \
        in run_all.results_block()
    for has, word in ((True, "with"), (False, "without")):
        cpu = {"cpu": "AMD EPYC", "family_model": "25/17", "cores": 2, "bfloat16": has}
        results_file.write_text(json.dumps({**results(), "policy": "mixed_bfloat16", "cpu": cpu}))
        assert (f"Fine-tuned under `mixed_bfloat16` on a CPU {word} bfloat16 instructions (AMD EPYC, family/model "
                f"25/17, 2 cores).\n") in run_all.results_block()


def test_results_block_names_each_interval_that_is_not_across_seeds(results_file):
    results_file.write_text(json.dumps(results()))
    block = run_all.results_block()
    assert "over test reviews (Wilson) for the same BERT, random init on 250 labelled reviews (1 seed) and " \
           "the same BERT, random init on all reviews (1 seed)" in block
    assert "the TF-IDF logistic regression on 250 labelled reviews and the TF-IDF logistic regression on all " \
           "reviews gave the same accuracy with every seed" in block


def test_results_block_refuses_the_quick_profile(results_file):
    results_file.write_text(json.dumps(results("quick")))
    with pytest.raises(SystemExit, match="not from the full profile"):
        run_all.results_block()


def test_a_failing_notebook_keeps_the_outputs_of_the_cells_that_ran(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('trained for hours')"),
                                               nbformat.v4.new_code_cell("assert False, 'a claim failed'")])
    path = tmp_path / f"99_failing-{uuid.uuid4().hex}.ipynb"
    nbformat.write(notebook, path)
    partial = helpers.ROOT / "outputs" / "executed" / f"{path.stem}.failed.ipynb"
    try:
        with pytest.raises(Exception, match="a claim failed"):
            run_all.execute(path, timeout=120)
        kept = nbformat.read(partial, as_version=4)
        assert [cell.source for cell in kept.cells] == [cell.source for cell in notebook.cells]
        assert kept.cells[0].outputs[0]["text"] == "trained for hours\n"
        assert kept.cells[1].outputs[0]["output_type"] == "error"
    finally:
        partial.unlink(missing_ok=True)


def test_a_notebook_that_ran_is_recorded_even_when_a_later_one_fails(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    for name, source in (("98_fine", "print('trained for hours')"), ("99_broken", "assert False, 'a claim failed'")):
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), tmp_path / f"{name}.ipynb")
    monkeypatch.setattr(run_all, "NOTEBOOKS", tmp_path)
    monkeypatch.setattr(run_all, "METRICS", tmp_path / "metrics")
    monkeypatch.setenv("TUTORIAL_QUICK", "1")  # main() sets both; monkeypatch restores them afterwards
    monkeypatch.setenv("TUTORIAL_PROFILE", "quick")
    executed = helpers.ROOT / "outputs" / "executed"
    try:
        assert run_all.main(["--quick"]) == 1
    finally:
        (executed / "98_fine.ipynb").unlink(missing_ok=True)
        (executed / "99_broken.failed.ipynb").unlink(missing_ok=True)
    record = json.loads((tmp_path / "metrics" / "run_all-quick.json").read_text())
    assert list(record["notebooks"]) == ["98_fine.ipynb"] and record["notebooks"]["98_fine.ipynb"]["seconds"] >= 0


def test_the_notebook_table_keeps_the_cells_of_profiles_that_have_no_record(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "METRICS", tmp_path)
    (tmp_path / "run_all-quick.json").write_text(json.dumps(
        {"notebooks": {"01_tokenization.ipynb": {"seconds": 30.0, "peak_memory_bytes": 10**9}}}))
    previous = run_all.readme_table().replace("| – | – | – | – | – |", "| 9.0 | 8.0 | 7.0 | 6.5 | 3.5 |")
    assert previous.count("| 9.0 | 8.0 | 7.0 | 6.5 | 3.5 |") == len(run_all.previous_cells(previous)) - 1  # not 01
    rows = {line.split("](notebooks/")[1].split(")")[0]: line for line in run_all.readme_table(previous).splitlines()
            if "](notebooks/" in line}
    assert rows["01_tokenization.ipynb"].endswith("| – | – | 0.5 | – | – |")  # only quick was run; nothing to keep
    assert rows["02_model_assembly.ipynb"].endswith("| 9.0 | 8.0 | 7.0 | 6.5 | 3.5 |")  # no record: the README's
    (tmp_path / "run_all-full.json").write_text(json.dumps(
        {"notebooks": {"02_model_assembly.ipynb": {"seconds": 120.0, "peak_memory_bytes": 2 * 10**9}}}))
    assert "| 2.0 | 8.0 | 7.0 | 2.0 | 3.5 |" in run_all.readme_table(previous)  # a full run: its minutes and memory
    (tmp_path / "run_all-workshop.json").write_text(json.dumps(
        {"notebooks": {"02_model_assembly.ipynb": {"seconds": 60.0, "peak_memory_bytes": 1.5 * 10**9}}}))
    assert "| 2.0 | 1.0 | 7.0 | 2.0 | 1.5 |" in run_all.readme_table(previous)  # a workshop run: its memory too


def test_the_notebook_table_reads_a_table_from_before_the_workshop_memory_column():
    old = ("| notebook | topic | minutes, full | minutes, workshop | minutes, quick | peak memory (GB) |\n"
           "| [03](notebooks/03_training.ipynb) | Fine-tuning | 83.9 | 10.5 | 1.6 | 12.8 |")
    assert run_all.previous_cells(old) == {"03_training.ipynb": ["83.9", "10.5", "1.6", "12.8", "–"]}
