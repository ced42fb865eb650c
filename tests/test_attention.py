"""helpers.attention_maps: shapes, rows, padding, and agreement with the layers' real outputs."""

import numpy as np
import pytest
from tiny import TINY, inputs

import helpers


def rebuilt_and_real_outputs(model, maps, token_ids, segment_ids):
    """Each attention layer's output rebuilt from the maps (weights · V · Wo + bo) and its real output."""
    layers = helpers.attention_layers(model)
    probe = helpers.keras.Model(model.inputs[:2], [t for layer in layers for t in (layer.input, layer.output)])
    tensors = probe.predict([token_ids, segment_ids], verbose=0)
    pairs = []
    for i, layer in enumerate(layers):
        x, real = tensors[2 * i], tensors[2 * i + 1]
        _, _, _, _, wv, bv, wo, bo = layer.get_weights()
        b, s, h = x.shape
        heads = layer.head_num
        v = (x @ wv + bv).reshape(b, s, heads, h // heads).transpose(0, 2, 1, 3)  # [batch, heads, seq, d]
        context = (maps[:, i] @ v).transpose(0, 2, 1, 3).reshape(b, s, h)
        pairs.append((context @ wo + bo, real))
    return pairs


def test_maps_have_clark_et_al_layout_rows_sum_to_one_and_ignore_padding(tiny_dir):
    token_ids, segment_ids = inputs(n=5, seq_len=12, masked=False)
    maps = helpers.attention_maps(helpers.load_bert(seq_len=12, folder=tiny_dir), token_ids, segment_ids, batch_size=2)
    assert maps.shape == (5, TINY["num_hidden_layers"], TINY["num_attention_heads"], 12, 12)
    assert maps.dtype == np.float32
    np.testing.assert_allclose(maps.sum(axis=-1), 1.0, atol=1e-5)
    assert maps[..., token_ids[0] == 0].max() < 1e-6  # the last 3 positions are padding in every row


def test_maps_rebuild_every_layers_real_output(tiny_dir):
    model = helpers.load_bert(seq_len=12, folder=tiny_dir)
    token_ids, segment_ids = inputs(n=4, seq_len=12, masked=False, seed=3)
    maps = helpers.attention_maps(model, token_ids, segment_ids)
    for rebuilt, real in rebuilt_and_real_outputs(model, maps, token_ids, segment_ids):
        np.testing.assert_allclose(rebuilt, real, atol=1e-5)


def test_classifier_and_pretraining_models_give_the_same_maps_as_the_body(tiny_dir):
    token_ids, segment_ids = inputs(n=3, seq_len=12, masked=False)
    body = helpers.attention_maps(helpers.load_bert(seq_len=12, folder=tiny_dir), token_ids, segment_ids)
    classifier = helpers.build_classifier(helpers.load_bert(seq_len=12, folder=tiny_dir))
    pretraining = helpers.load_bert(seq_len=12, training=True, folder=tiny_dir)
    np.testing.assert_allclose(helpers.attention_maps(classifier, token_ids, segment_ids), body, atol=1e-6)
    np.testing.assert_allclose(helpers.attention_maps(pretraining, token_ids, segment_ids), body, atol=1e-6)


def test_attention_maps_rejects_bad_shapes_and_models_without_attention(tiny_dir):
    model = helpers.load_bert(seq_len=12, folder=tiny_dir)
    token_ids, segment_ids = inputs(n=2, seq_len=12, masked=False)
    with pytest.raises(ValueError, match="must both be \\[batch, seq\\]"):
        helpers.attention_maps(model, token_ids[0], segment_ids[0])
    with pytest.raises(ValueError, match="no keras-bert attention layers"):
        helpers.attention_maps(helpers.keras.Sequential([helpers.keras.layers.Dense(1, input_shape=(12,))]),
                               token_ids, segment_ids)
