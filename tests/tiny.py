"""The tiny BERT the unit tests share: its config, vocabulary, a model with non-trivial weights, and inputs."""

import keras_bert
import numpy as np

import helpers

TINY = {"vocab_size": 40, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 32, "max_position_embeddings": 64, "hidden_act": "gelu", "type_vocab_size": 2}
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(0x4E00 + i) for i in range(35)]  # 一丁丂七…


def tiny_model(training=True, seed=1, config=TINY):
    helpers.seed_everything(seed)  # the same weights whichever test asks first on an xdist worker
    model = keras_bert.get_model(
        token_num=config["vocab_size"], pos_num=config["max_position_embeddings"], seq_len=None,
        embed_dim=config["hidden_size"], transformer_num=config["num_hidden_layers"],
        head_num=config["num_attention_heads"], feed_forward_dim=config["intermediate_size"], training=training)
    if not training:
        model = helpers.keras.Model(*model)
    helpers.reinitialize_attention(model, seed=seed)
    rng = np.random.default_rng(seed)  # make every weight non-trivial, so the round trip checks them all
    for layer in model.layers:
        layer.set_weights([w + rng.normal(0, 0.02, w.shape).astype(w.dtype) for w in layer.get_weights()])
    return model


def inputs(n=3, seq_len=12, seed=0, masked=True):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(5, TINY["vocab_size"], size=(n, seq_len))
    tokens[:, 0], tokens[:, -3:] = 2, 0  # [CLS] first, some padding at the end
    segments = (np.arange(seq_len) > seq_len // 2).astype(int)[None].repeat(n, 0)
    return [tokens, segments] + ([np.ones_like(tokens)] if masked else [])
