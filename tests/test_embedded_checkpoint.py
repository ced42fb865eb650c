"""The embedded checkpoint data/mini-bert-zh: Google's format, size, and a README generated from its run."""

import json

import numpy as np
import pytest
import tensorflow as tf

import helpers

FOLDER = helpers.EMBEDDED_BERT_DIR
import describe_checkpoint


@pytest.fixture(scope="module")
def run():
    return json.loads((FOLDER / "pretraining_run.json").read_text(encoding="utf-8"))


def test_embedded_checkpoint_is_complete_consistent_and_small():
    for training in (False, True):
        helpers.check_checkpoint(FOLDER, training=training)
    size = sum(p.stat().st_size for p in FOLDER.iterdir())
    assert size <= 30e6, f"data/mini-bert-zh is {size / 1e6:.1f} MB; the budget is 30 MB"


def test_embedded_checkpoint_uses_google_names_only():
    stored = dict(tf.train.list_variables(str(FOLDER / "bert_model.ckpt")))
    assert set(stored) == set(helpers.expected_shapes(helpers.load_config(FOLDER), training=True))
    assert all(name.startswith(("bert/embeddings/", "bert/encoder/layer_", "bert/pooler/dense/", "cls/predictions/",
                                "cls/seq_relationship/")) for name in stored)


def test_embedded_checkpoint_loads_both_ways_with_keras_bert():
    config = helpers.load_config(FOLDER)
    body = helpers.load_bert(seq_len=16, folder=FOLDER)
    pretraining = helpers.load_bert(seq_len=16, training=True, folder=FOLDER)
    assert body.output_shape == (None, 16, config["hidden_size"])
    assert [o.shape.as_list() for o in pretraining.outputs] == [[None, 16, config["vocab_size"]], [None, 2]]
    # the trained attention projections are all different (a fresh keras-bert model has Wq == Wk == Wv)
    wq, _, wk, _, wv, *_ = body.get_layer("Encoder-1-MultiHeadSelfAttention").get_weights()
    assert not np.allclose(wq, wk) and not np.allclose(wk, wv)


def test_the_run_record_matches_the_checkpoint(run):
    config = helpers.load_config(FOLDER)
    assert run["model_config"] == config
    h, v = config["hidden_size"], config["vocab_size"]
    heads = {"MLM transform dense": h * h + h, "MLM layer norm": 2 * h, "MLM output bias (tied embeddings)": v,
             "pooler": h * h + h, "NSP output": 2 * h + 2}
    stored = sum(int(np.prod(shape)) for _, shape in tf.train.list_variables(str(FOLDER / "bert_model.ckpt")))
    assert run["parameters"] == stored == sum(helpers.bert_parameter_counts(config).values()) + sum(heads.values())


def test_the_readmes_of_v1_and_v2_are_generated_from_their_records():
    assert describe_checkpoint.main(["--check"]) == 0, "run: python data/describe_checkpoint.py"
