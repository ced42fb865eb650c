"""Notebook 02's lesson as a unit test: BERT's body is exactly the embeddings, LayerNorm, and the
encoder blocks (attention with the padding mask, residual, LayerNorm, GELU feed-forward). An
independent NumPy forward pass on the tiny random model, with padding, must equal keras-bert."""

import numpy as np
from tiny import TINY, inputs

import helpers


def layer_norm(x, gamma, beta):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-14) * gamma + beta


def encoder(weights, token_ids, segment_ids, heads, mask_padding=True):
    """The whole body for one row, in float64; returns every block's output."""
    length = len(token_ids)
    x = (weights["Embedding-Token"][0][token_ids] + weights["Embedding-Segment"][0][segment_ids]
         + weights["Embedding-Position"][0][:length])
    x = layer_norm(x, *weights["Embedding-Norm"])
    padding = (token_ids == 0)[None, None, :] * (10000.0 if mask_padding else 0.0)
    outputs = []
    for n in range(1, TINY["num_hidden_layers"] + 1):
        wq, bq, wk, bk, wv, bv, wo, bo = weights[f"Encoder-{n}-MultiHeadSelfAttention"]
        d = x.shape[1] // heads
        q, k, v = ((x @ w + b).reshape(length, heads, d).transpose(1, 0, 2) for w, b in ((wq, bq), (wk, bk), (wv, bv)))
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(d) - padding
        probabilities = np.exp(scores - scores.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        attended = (probabilities @ v).transpose(1, 0, 2).reshape(length, -1) @ wo + bo
        x = layer_norm(x + attended, *weights[f"Encoder-{n}-MultiHeadSelfAttention-Norm"])
        w1, b1, w2, b2 = weights[f"Encoder-{n}-FeedForward"]
        h = x @ w1 + b1
        gelu = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))  # keras-bert's tanh form
        x = layer_norm(x + gelu @ w2 + b2, *weights[f"Encoder-{n}-FeedForward-Norm"])
        outputs.append(x)
    return outputs


def test_a_forward_pass_by_hand_equals_keras_bert_block_by_block_with_padding(tiny_dir):
    bert = helpers.load_bert(seq_len=12, folder=tiny_dir)
    token_ids, segment_ids = inputs(n=3, seq_len=12, masked=False)  # the last 3 positions are padding
    assert (token_ids == 0).any()
    probe = helpers.keras.Model(bert.inputs, [bert.get_layer(f"Encoder-{n}-FeedForward-Norm").output
                                              for n in range(1, TINY["num_hidden_layers"] + 1)])
    real = probe.predict([token_ids, segment_ids], verbose=0)
    weights = {layer.name: [w.astype(np.float64) for w in layer.get_weights()]
               for layer in bert.layers if layer.weights}
    for row in range(len(token_ids)):
        by_hand = encoder(weights, token_ids[row], segment_ids[row], TINY["num_attention_heads"])
        for n, (mine, theirs) in enumerate(zip(by_hand, real), start=1):
            np.testing.assert_allclose(mine, theirs[row], atol=1e-5, err_msg=f"row {row}, block {n}")
    # the comparison is sharp enough to catch a missing padding mask
    unmasked = encoder(weights, token_ids[0], segment_ids[0], TINY["num_attention_heads"], mask_padding=False)
    assert np.abs(unmasked[-1] - real[-1][0]).max() > 1e-3
