"""Fixtures the unit tests share. The import path (the repository root for helpers, tests/ for tiny,
data/ for its scripts) is set by `pythonpath` in pyproject.toml."""

import pytest
from tiny import TINY, VOCAB, tiny_model

import helpers


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A Google-format checkpoint folder of the tiny model, with both pretraining heads."""
    folder = tmp_path_factory.mktemp("tiny") / "bert"
    helpers.export_checkpoint(tiny_model(training=True), TINY, folder, vocab=VOCAB)
    return folder
