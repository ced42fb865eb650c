"""Google-format checkpoints: export and reload, BERT_DIR, error cases, attention re-initialisation,
and the warm-up schedule."""

import json

import keras_bert
import numpy as np
import pytest
from tiny import TINY, VOCAB, inputs, tiny_model

import helpers


@pytest.fixture()
def exported(tmp_path):
    model = tiny_model(training=True)
    helpers.export_checkpoint(model, TINY, tmp_path / "tiny", vocab=VOCAB)
    return model, tmp_path / "tiny"


def test_export_writes_google_files_and_names(exported):
    _, folder = exported
    assert sorted(p.name for p in folder.iterdir()) == sorted(helpers.CHECKPOINT_FILES)
    stored = dict(helpers.tf.train.list_variables(str(folder / "bert_model.ckpt")))
    assert stored["bert/embeddings/word_embeddings"] == [40, 16]
    assert stored["bert/encoder/layer_1/attention/self/query/kernel"] == [16, 16]
    assert stored["bert/encoder/layer_0/intermediate/dense/kernel"] == [16, 32]
    assert stored["cls/seq_relationship/output_weights"] == [2, 16]  # Google stores it transposed
    assert stored["cls/predictions/output_bias"] == [40]
    assert json.loads((folder / "bert_config.json").read_text()) == TINY


@pytest.mark.parametrize("training", [True, False])
def test_reloaded_model_computes_the_same_outputs(exported, training):
    model, folder = exported
    reloaded = helpers.load_bert(seq_len=12, training=training, folder=folder)
    if training:
        expected, got = model.predict(inputs(), verbose=0), reloaded.predict(inputs(), verbose=0)
        for e, g in zip(expected, got):
            np.testing.assert_allclose(g, e, atol=1e-6)
    else:
        body = helpers.keras.Model(model.inputs[:2], model.get_layer("Encoder-2-FeedForward-Norm").output)
        np.testing.assert_allclose(reloaded.predict(inputs(masked=False), verbose=0),
                                   body.predict(inputs(masked=False), verbose=0), atol=1e-6)


def test_bert_dir_environment_variable_switches_the_checkpoint(exported, monkeypatch):
    _, folder = exported
    monkeypatch.setenv("BERT_DIR", str(folder))
    assert helpers.bert_dir() == folder
    assert helpers.load_config()["hidden_size"] == 16
    assert helpers.load_tokenizer().encode(VOCAB[5] + VOCAB[7])[0] == [2, 5, 7, 3]
    assert helpers.load_bert(seq_len=12).output_shape == (None, 12, 16)


def test_export_refuses_to_overwrite(exported):
    model, folder = exported
    with pytest.raises(FileExistsError, match="will not overwrite"):
        helpers.export_checkpoint(model, TINY, folder, vocab=VOCAB)


def test_export_rejects_a_config_that_does_not_match_the_model(tmp_path):
    with pytest.raises(ValueError, match="does not match the config"):
        helpers.export_checkpoint(tiny_model(), {**TINY, "intermediate_size": 64}, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_vocabulary_that_does_not_match_the_config_is_reported(exported):
    _, folder = exported
    (folder / "vocab.txt").write_text("\n".join(VOCAB + ["多"]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="vocab.txt has 41 tokens but bert_config.json says vocab_size=40"):
        helpers.load_bert(folder=folder)


def test_a_config_that_does_not_match_the_checkpoint_is_reported(exported):
    _, folder = exported
    (folder / "bert_config.json").write_text(json.dumps({**TINY, "hidden_size": 32, "num_hidden_layers": 3}))
    with pytest.raises(ValueError) as error:
        helpers.load_bert(folder=folder)
    message = str(error.value)
    assert "bert/embeddings/word_embeddings has shape (40, 16), the config implies (40, 32)" in message
    assert "checkpoint lacks bert/encoder/layer_2/" in message


def test_missing_pretraining_heads_are_reported_for_training_true(tmp_path):
    helpers.export_checkpoint(tiny_model(training=False), TINY, tmp_path / "body", vocab=VOCAB)
    helpers.load_bert(seq_len=12, folder=tmp_path / "body")  # the body alone loads fine
    with pytest.raises(ValueError, match=r"checkpoint lacks cls/predictions/transform/dense/kernel.*and 5 more"):
        helpers.load_bert(seq_len=12, training=True, folder=tmp_path / "body")


def test_a_config_missing_keys_is_reported(exported):
    _, folder = exported
    (folder / "bert_config.json").write_text(json.dumps({"vocab_size": 40}))
    with pytest.raises(ValueError, match="lacks hidden_size"):
        helpers.check_checkpoint(folder)


# --- attention initialisation -----------------------------------------------------------------
def attention_weights(model, layer=1):
    return model.get_layer(f"Encoder-{layer}-MultiHeadSelfAttention").get_weights()[0::2]  # Wq, Wk, Wv, Wo


def test_fresh_keras_bert_attention_weights_are_identical_and_reinitialisation_fixes_it():
    model = keras_bert.get_model(token_num=40, embed_dim=16, transformer_num=2, head_num=2,
                                 feed_forward_dim=32, training=True)
    wq, wk, wv, wo = attention_weights(model)
    assert np.array_equal(wq, wk) and np.array_equal(wk, wv) and np.array_equal(wv, wo), \
        "keras-bert's initialisation changed: revisit helpers.reinitialize_attention and notebook 05"
    helpers.reinitialize_attention(model, seed=3)
    for layer in (1, 2):
        matrices = attention_weights(model, layer)
        for i in range(4):
            for j in range(i + 1, 4):
                assert not np.allclose(matrices[i], matrices[j])
            assert 0.5 < matrices[i].std() / np.sqrt(2 / 32) < 1.5  # Glorot-normal scale
    assert not np.allclose(attention_weights(model, 1)[0], attention_weights(model, 2)[0])


def test_reinitialisation_is_seeded():
    def fresh(seed):
        model = keras_bert.get_model(token_num=40, embed_dim=16, transformer_num=1, head_num=2,
                                     feed_forward_dim=32, training=True)
        helpers.reinitialize_attention(model, seed=seed)
        return attention_weights(model)

    assert all(np.array_equal(a, b) for a, b in zip(fresh(5), fresh(5)))
    assert not any(np.allclose(a, b) for a, b in zip(fresh(5), fresh(6)))


def test_reinitialize_attention_needs_a_keras_bert_model():
    model = helpers.keras.Sequential([helpers.keras.layers.Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match="no keras-bert attention layers"):
        helpers.reinitialize_attention(model, seed=0)


# --- learning-rate schedule -------------------------------------------------------------------
def test_warmup_linear_decay_rises_then_falls_to_zero():
    schedule = helpers.WarmupLinearDecay(1e-3, warmup_steps=10, total_steps=110)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    np.testing.assert_allclose(values, [0, 5e-4, 1e-3, 5e-4, 0, 0], atol=1e-9)
    assert helpers.WarmupLinearDecay(**schedule.get_config()).get_config() == schedule.get_config()


@pytest.mark.parametrize("warmup, total", [(10, 10), (-1, 10), (20, 10)])
def test_warmup_linear_decay_rejects_impossible_step_counts(warmup, total):
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        helpers.WarmupLinearDecay(1e-3, warmup, total)


def test_adamw_with_the_schedule_trains_a_keras_bert_model():
    model = tiny_model(training=True)
    optimizer = helpers.keras.optimizers.AdamW(learning_rate=helpers.WarmupLinearDecay(1e-2, 2, 20))
    model.compile(optimizer=optimizer, loss=helpers.keras.losses.sparse_categorical_crossentropy)
    x = inputs(n=8)
    y = [x[0][..., None], np.zeros((8, 1))]
    losses = [model.train_on_batch(x, y)[0] for _ in range(15)]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
