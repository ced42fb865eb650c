"""The committed notebooks' stored outputs: from one clean top-to-bottom run, and free of noise a reader
would have to learn to ignore (machine paths, TensorFlow's log lines, warnings, terminal progress bars)."""

import json
import re

import pytest

import helpers

NOTEBOOKS = sorted((helpers.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NOISE = {
    "a machine path": re.compile(r"(/work/|/home/|/root/|/tmp/|/Users/|[A-Z]:\\\\|site-packages)"),
    "TensorFlow's C++ log lines": re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog|oneDNN|cuda", re.M),
    "keras-bert's unseeded-initializer warning": re.compile(r"initializer \w+ is unseeded"),
    "a warning": re.compile(r"\w+Warning: "),
    "a terminal progress bar": re.compile(r"\r|█|\d+it/s\]|\?it/s\]"),
}


def stored_text(output: dict) -> str:
    if output["output_type"] == "stream":
        return "".join(output["text"])
    if output["output_type"] == "error":
        return "\n".join(output["traceback"])
    return "".join(output.get("data", {}).get("text/plain", ""))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_are_clean(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    found = []
    for number, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            text = stored_text(output)
            found += [f"cell {number}: {name}: {text[:80]!r}"
                      for name, pattern in NOISE.items() if pattern.search(text)]
            if output["output_type"] == "error":
                found.append(f"cell {number}: an error")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_come_from_one_run_top_to_bottom(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    counts = [cell["execution_count"] for cell in cells if cell["cell_type"] == "code"]
    assert counts == list(range(1, len(counts) + 1)), "re-run the notebook on a fresh kernel (notebooks/run_all.py)"


def test_the_noise_patterns_catch_what_they_are_for():
    samples = {
        "a machine path": "/work/main/.venv/lib/python3.11/site-packages/tf_keras/x.py:121: UserWarning",
        "TensorFlow's C++ log lines": "I0000 00:00:1795661031.935776   24310 port.cc:153] oneDNN custom operations",
        "keras-bert's unseeded-initializer warning": "The initializer GlorotNormal is unseeded and being called",
        "a warning": "UserWarning: something",
        "a terminal progress bar": "\rencoding: 100%|██████████| 17361/17361",
    }
    for name, text in samples.items():
        assert NOISE[name].search(text), name
    assert not any(p.search("layer 2, head 4: 0.52 of its attention on the previous token") for p in NOISE.values())
