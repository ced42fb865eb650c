"""The classifier of notebooks 02-04: heads, parameter counts, saving and reloading."""

import json

import keras_bert
import numpy as np
import pytest
from tiny import TINY, inputs

import helpers


@pytest.mark.parametrize("head", helpers.CLASSIFIER_HEADS)
def test_classifier_heads_give_probabilities_and_ignore_padding(tiny_dir, head):
    model = helpers.build_classifier(helpers.load_bert(seq_len=None, folder=tiny_dir), head)  # any length
    assert model.output_shape == (None, 1)
    assert model.count_params() == sum(helpers.bert_parameter_counts(TINY).values()) + TINY["hidden_size"] + 1
    tokens, segments = inputs(masked=False)
    short = model.predict([tokens, segments], verbose=0)
    long = model.predict([np.pad(tokens, ((0, 0), (0, 8))), np.pad(segments, ((0, 0), (0, 8)))], verbose=0)
    assert ((short > 0) & (short < 1)).all()
    np.testing.assert_allclose(long, short, atol=1e-5)  # more padding changes nothing


def test_cls_head_equals_the_original_lambda(tiny_dir):
    bert = helpers.load_bert(seq_len=12, folder=tiny_dir)
    ours = helpers.build_classifier(bert, "cls")
    cls = helpers.keras.layers.Lambda(lambda x: x[:, 0])(bert.output)
    original = helpers.keras.Model(bert.inputs, ours.get_layer("Sentiment")(cls))
    x = inputs(masked=False)
    np.testing.assert_array_equal(original.predict(x, verbose=0), ours.predict(x, verbose=0))


def test_build_classifier_rejects_unknown_heads_and_pretraining_models(tiny_dir):
    with pytest.raises(ValueError, match="choose one of"):
        helpers.build_classifier(helpers.load_bert(seq_len=12, folder=tiny_dir), "pooler")
    with pytest.raises(ValueError, match="load_bert\\(training=False\\)"):
        helpers.build_classifier(helpers.load_bert(seq_len=12, training=True, folder=tiny_dir))


@pytest.mark.parametrize("config, seq_len", [
    (TINY, None),
    ({**TINY, "hidden_size": 24, "num_hidden_layers": 3, "num_attention_heads": 3, "intermediate_size": 40,
      "vocab_size": 77, "max_position_embeddings": 128}, 50),
])
def test_parameter_counts_equal_keras(tmp_path, config, seq_len):
    (tmp_path / "bert_config.json").write_text(json.dumps(config))
    model, _ = keras_bert.build_model_from_config(str(tmp_path / "bert_config.json"), seq_len=seq_len)
    assert sum(helpers.bert_parameter_counts(config, seq_len).values()) == model.count_params()


@pytest.mark.parametrize("head", helpers.CLASSIFIER_HEADS)
def test_saved_classifier_reloads_with_the_same_predictions(tiny_dir, tmp_path, head):
    model = helpers.build_classifier(helpers.load_bert(seq_len=12, folder=tiny_dir), head)
    model.save(tmp_path / "classifier.keras")
    reloaded = helpers.keras.models.load_model(tmp_path / "classifier.keras", custom_objects=helpers.custom_objects())
    x = inputs(masked=False)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_keras_bert_custom_objects_alone_miss_the_max_pooling_layer(tiny_dir, tmp_path):
    model = helpers.build_classifier(helpers.load_bert(seq_len=12, folder=tiny_dir), "max")
    model.save(tmp_path / "classifier.keras")
    assert "MaskedGlobalMaxPool1D" not in keras_bert.get_custom_objects()
    with pytest.raises(TypeError, match="'str' object is not callable"):  # Keras's confusing symptom
        helpers.keras.models.load_model(tmp_path / "classifier.keras", custom_objects=keras_bert.get_custom_objects())


def test_keras_bert_prefix_list_crashes_and_load_bert_applies_it(tiny_dir):
    with pytest.raises(TypeError, match="Expected `trainable` argument to be a boolean"):
        keras_bert.load_trained_model_from_checkpoint(
            str(tiny_dir / "bert_config.json"), str(tiny_dir / "bert_model.ckpt"), seq_len=12, trainable=["Encoder-2-"])
    model = helpers.load_bert(seq_len=12, trainable=["Encoder-2-", "Embedding-Norm"], folder=tiny_dir)
    training = {layer.name for layer in model.layers if layer.trainable and layer.weights}
    assert training == {"Embedding-Norm", "Encoder-2-MultiHeadSelfAttention", "Encoder-2-MultiHeadSelfAttention-Norm",
                        "Encoder-2-FeedForward", "Encoder-2-FeedForward-Norm"}
    frozen = helpers.load_bert(seq_len=12, trainable=False, folder=tiny_dir)
    assert not frozen.trainable_weights


def test_a_compiled_classifier_reloads_with_its_optimizer_and_schedule(tiny_dir, tmp_path):
    model = helpers.build_classifier(helpers.load_bert(seq_len=12, folder=tiny_dir))
    model.compile(optimizer=helpers.keras.optimizers.AdamW(helpers.WarmupLinearDecay(1e-3, 2, 10)),
                  loss="binary_crossentropy")
    x = inputs(masked=False)
    model.train_on_batch(x, np.array([0.0, 1.0, 1.0]))
    model.save(tmp_path / "trained.keras")
    reloaded = helpers.keras.models.load_model(tmp_path / "trained.keras", custom_objects=helpers.custom_objects())
    schedule = reloaded.optimizer.get_config()["learning_rate"]
    assert schedule["class_name"].endswith("WarmupLinearDecay")
    assert schedule["config"] == {"peak": 1e-3, "warmup_steps": 2, "total_steps": 10}
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_custom_objects_hold_exactly_what_reloading_a_classifier_needs(tiny_dir, tmp_path):
    tokens, segments = inputs(masked=False)
    saved = []
    for head in helpers.CLASSIFIER_HEADS:
        model = helpers.build_classifier(helpers.load_bert(seq_len=12, folder=tiny_dir), head)
        model.compile(optimizer=helpers.keras.optimizers.AdamW(helpers.WarmupLinearDecay(1e-4, 1, 10)),
                      loss="binary_crossentropy")
        model.save(tmp_path / f"{head}.keras")
        saved.append((tmp_path / f"{head}.keras", model.predict([tokens, segments], verbose=0)))

    def reloads_exactly(objects) -> bool:
        for path, expected in saved:
            try:
                model = helpers.keras.models.load_model(path, custom_objects=objects)
                got = model.predict([tokens, segments], verbose=0)
            except Exception:  # Keras raises TypeError or ValueError, depending on the layer
                return False
            if not np.allclose(got, expected, rtol=0, atol=1e-7):  # loaded, but with another layer or activation
                return False
        return True

    objects = helpers.custom_objects()
    assert reloads_exactly(objects)
    # no more than that: keras-bert's layers in a classifier, its GELU and the max pooling layer
    assert set(objects) == {"TokenEmbedding", "PositionEmbedding", "MultiHeadAttention", "FeedForward",
                            "LayerNormalization", "gelu", "Extract", "MaskedGlobalMaxPool1D"}
    # and each of these is needed: without gelu a model loads with tf-keras's exact GELU and predicts
    # differently; without the others some classifier does not load at all. (Whether a missing
    # LayerNormalization shows depends on what Keras registered earlier in the process, so it is not
    # checked here; a fresh process needs it.)
    for name in sorted(set(objects) - {"LayerNormalization"}):
        assert not reloads_exactly({k: v for k, v in objects.items() if k != name}), f"{name!r} is not needed"
