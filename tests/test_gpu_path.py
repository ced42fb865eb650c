"""Notebooks 03 and 04 down the code path a GPU machine takes, on the CPU (issue #16): what "auto"
selects with several GPUs, forced through the notebook's settings: mixed_float16 (Keras wraps the
optimizer in loss scaling) and every model built under MirroredStrategy over the two logical CPUs. Every
assert of the notebooks must hold. Then notebook 04 and helpers.predict_sentiment use the classifier
trained that way. The runs write to their own outputs folder, so they cannot race nbval's runs."""

import json

import numpy as np
import pytest

import helpers

NOTEBOOKS = helpers.ROOT / "notebooks"
QUICK_SEEDS = "SEEDS, LEARNING_RATES, LR_SWEEP_SIZE = (2019, 2020), (1e-4, 3e-4), 32"  # notebook 03's quick profile


def execute(name: str, parameters: dict[str, str] | None = None):
    """Run a notebook on a fresh kernel and return it; `parameters` replaces text in its parameter cell."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    for old, new in (parameters or {}).items():
        cell = next((c for c in notebook.cells if c.cell_type == "code" and old in c.source), None)
        assert cell is not None, f"{name} has no code cell containing {old!r}: update this test's parameters"
        cell.source = cell.source.replace(old, new)
    nbclient.NotebookClient(notebook, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return notebook


def test_notebooks_03_and_04_on_the_gpu_code_path(tmp_path, monkeypatch):
    for name, value in {"TUTORIAL_QUICK": "1", "TUTORIAL_PRECISION": "mixed_float16",
                        "TUTORIAL_STRATEGY": "mirrored", "TUTORIAL_OUTPUTS": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)  # the kernels inherit this process's environment
    # one seed and one learning rate (the workshop profile's single-seed path): the device path is what this
    # test checks, and under MirroredStrategy every extra model costs tens of seconds of tracing; nbval runs
    # the quick profile's two seeds and learning-rate choice in float32
    execute("03_training.ipynb", {QUICK_SEEDS: "SEEDS, LEARNING_RATES, LR_SWEEP_SIZE = (2019,), (3e-4,), 32"})
    results = json.loads((tmp_path / "metrics" / "03_training-quick.json").read_text())
    assert results["policy"] == "mixed_float16" and results["strategy"] == "MirroredStrategy"
    saved = tmp_path / "03_training-quick" / "classifier.keras"
    model = helpers.keras.models.load_model(saved, custom_objects=helpers.custom_objects())
    policies = {layer.dtype_policy.name for layer in model.layers}
    assert "mixed_float16" in policies and model.get_layer("Sentiment").dtype_policy.name == "float32"

    # helpers.predict_sentiment on it: probabilities as float32 would give them, not float16 noise or NaN
    texts = ["这家酒店的服务很好，房间也干净。", "太差了，再也不来了。"]
    predictions = helpers.predict_sentiment(model, texts, helpers.load_tokenizer())
    assert predictions["positive"].dtype == np.float64 and predictions["positive"].between(0, 1).all()

    # notebook 04 on that classifier (its parameter FINE_TUNED names the model to inspect): every cell runs
    attention = execute("04_attention.ipynb", {"FINE_TUNED = helpers.classifier_path(quick=False)":
                                               "FINE_TUNED = helpers.classifier_path(quick=True)",
                                               "SEQ_LEN = 128": f"SEQ_LEN = {model.inputs[0].shape[1]}"})
    printed = "".join(output.get("text", "") for cell in attention.cells if cell.cell_type == "code"
                      for output in cell.get("outputs", []))
    assert "fine-tuned model: the classifier in 03_training-quick/" in printed
