"""Workshop robustness: odd reviews through the "try it yourself" helper, and a checkpoint with
Google's names and BERT-base widths, written independently of helpers.export_checkpoint."""

import json

import keras_bert
import numpy as np
import pytest
import tensorflow as tf

import helpers

SEQ_LEN = 32


# --- odd reviews -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_vocab_classifier(tmp_path_factory):
    """A small random classifier over the embedded vocabulary, so the real tokenizer is exercised."""
    vocab = helpers.load_vocab(helpers.EMBEDDED_BERT_DIR)
    bert = keras_bert.get_model(token_num=len(vocab), pos_num=64, seq_len=SEQ_LEN, embed_dim=16, transformer_num=1,
                                head_num=2, feed_forward_dim=32, training=False)
    bert = helpers.keras.Model(*bert)
    helpers.reinitialize_attention(bert, seed=3)
    return helpers.build_classifier(bert), keras_bert.Tokenizer(vocab)


ODD_REVIEWS = {
    "emoji only": "😀😀👍",
    "10,000 characters": "好" * 10_000,
    "Traditional Chinese": "這家飯店的服務很好，環境也不錯。",
    "full-width Latin and digits": "ＢＥＲＴ很好用，１２３分！",
    "mixed Chinese, English and digits": "iPhone 15 Pro的屏幕很好，but 电池一般，3天就没电了。",
}


def test_prediction_helper_returns_one_probability_per_odd_review_in_order(real_vocab_classifier):
    model, tokenizer = real_vocab_classifier
    texts = list(ODD_REVIEWS.values())
    result = helpers.predict_sentiment(model, texts, tokenizer, seq_len=SEQ_LEN)
    assert list(result["text"]) == texts  # nothing dropped, nothing reordered
    assert result["positive"].between(0, 1).all() and np.isfinite(result["positive"]).all()
    one_by_one = [helpers.predict_sentiment(model, [t], tokenizer, seq_len=SEQ_LEN)["positive"][0] for t in texts]
    np.testing.assert_allclose(result["positive"], one_by_one, atol=1e-5)
    # the token count tells the reader when a review was cut at seq_len
    assert result.set_index("text").loc["好" * 10_000, "tokens"] == 10_002 > SEQ_LEN


def test_odd_reviews_tokenize_as_documented(real_vocab_classifier):
    _, tokenizer = real_vocab_classifier
    # keras-bert splits an unknown word into one piece per character (Google's tokenizer emits one [UNK]);
    # each piece then encodes as [UNK]: the review is kept, as three unknown tokens
    assert tokenizer.tokenize(ODD_REVIEWS["emoji only"]) == ["[CLS]", "😀", "##😀", "##👍", "[SEP]"]
    vocab = helpers.load_vocab(helpers.EMBEDDED_BERT_DIR)
    ids = tokenizer.encode(ODD_REVIEWS["emoji only"])[0]
    assert ids == [vocab["[CLS]"], vocab["[UNK]"], vocab["[UNK]"], vocab["[UNK]"], vocab["[SEP]"]]
    traditional = tokenizer.tokenize(ODD_REVIEWS["Traditional Chinese"])
    assert len(traditional) == len(ODD_REVIEWS["Traditional Chinese"]) + 2  # one token per character
    mixed = tokenizer.tokenize(ODD_REVIEWS["mixed Chinese, English and digits"])
    assert "iphone" in "".join(mixed).replace("##", "")  # lower-cased, split into word pieces, not dropped
    assert "[UNK]" not in mixed


def test_prediction_helper_takes_any_iterable_and_the_model_length_by_default(real_vocab_classifier):
    model, tokenizer = real_vocab_classifier
    texts = ["这家酒店的服务很好。", "太差了"]
    expected = helpers.predict_sentiment(model, texts, tokenizer, seq_len=SEQ_LEN)
    from_generator = helpers.predict_sentiment(model, (t for t in texts), tokenizer)  # seq_len from the model
    assert list(from_generator["text"]) == texts
    np.testing.assert_allclose(from_generator["positive"], expected["positive"], atol=1e-6)
    assert list(from_generator["tokens"]) == [len(tokenizer.tokenize(t)) for t in texts]


@pytest.mark.parametrize(("texts", "error", "message"), [
    ([""], ValueError, "empty or only whitespace"),
    (["很好", " \t\n　"], ValueError, r"texts\[1\] is empty or only whitespace"),
    ("很好", TypeError, "not one string"),
    ([None], TypeError, "not str"),
])
def test_prediction_helper_rejects_bad_input_clearly(real_vocab_classifier, texts, error, message):
    model, tokenizer = real_vocab_classifier
    with pytest.raises(error, match=message):
        helpers.predict_sentiment(model, texts, tokenizer, seq_len=SEQ_LEN)


# --- a Google-layout checkpoint with BERT-base widths -----------------------------------------
BASE = {"attention_probs_dropout_prob": 0.1, "directionality": "bidi", "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
        "max_position_embeddings": 512, "num_attention_heads": 12, "num_hidden_layers": 2,
        "pooler_fc_size": 768, "pooler_num_attention_heads": 12, "pooler_num_fc_layers": 3,
        "pooler_size_per_head": 128, "pooler_type": "first_token_transform", "type_vocab_size": 2,
        "vocab_size": 21128}  # Google's chinese_L-12_H-768_A-12 config with 2 layers instead of 12


def google_variables(config):
    """Google's BERT variable names and shapes, written out from the published checkpoint's layout
    (not from helpers), plus the Adam slots and global_step a real checkpoint also holds."""
    h, f, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    shapes = {"bert/embeddings/word_embeddings": (v, h),
              "bert/embeddings/position_embeddings": (config["max_position_embeddings"], h),
              "bert/embeddings/token_type_embeddings": (config["type_vocab_size"], h),
              "bert/embeddings/LayerNorm/gamma": (h,), "bert/embeddings/LayerNorm/beta": (h,),
              "bert/pooler/dense/kernel": (h, h), "bert/pooler/dense/bias": (h,),
              "cls/predictions/transform/dense/kernel": (h, h), "cls/predictions/transform/dense/bias": (h,),
              "cls/predictions/transform/LayerNorm/gamma": (h,), "cls/predictions/transform/LayerNorm/beta": (h,),
              "cls/predictions/output_bias": (v,),
              "cls/seq_relationship/output_weights": (2, h), "cls/seq_relationship/output_bias": (2,)}
    for i in range(config["num_hidden_layers"]):
        p = f"bert/encoder/layer_{i}"
        for dense, (n_in, n_out) in {"attention/self/query": (h, h), "attention/self/key": (h, h),
                                     "attention/self/value": (h, h), "attention/output/dense": (h, h),
                                     "intermediate/dense": (h, f), "output/dense": (f, h)}.items():
            shapes[f"{p}/{dense}/kernel"], shapes[f"{p}/{dense}/bias"] = (n_in, n_out), (n_out,)
        for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
            shapes[f"{p}/{norm}/gamma"], shapes[f"{p}/{norm}/beta"] = (h,), (h,)
    shapes["bert/embeddings/word_embeddings/adam_m"] = (v, h)  # optimizer slots keras-bert must ignore
    shapes["global_step"] = ()
    return shapes


@pytest.fixture(scope="module")
def google_base_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("google") / "chinese_L-2_H-768_A-12"
    folder.mkdir()
    rng = np.random.default_rng(0)
    names, tensors = [], []
    for name, shape in google_variables(BASE).items():
        if name == "global_step":
            value = tf.constant(1000, tf.int64)
        elif name.endswith("gamma"):
            value = tf.constant(1 + rng.normal(0, 0.02, shape), tf.float32)
        else:
            value = tf.constant(rng.normal(0, 0.02, shape), tf.float32)
        names.append(name)
        tensors.append(value)
    tf.raw_ops.SaveV2(prefix=str(folder / "bert_model.ckpt"), tensor_names=names,
                      shape_and_slices=[""] * len(names), tensors=tensors)
    (folder / "bert_config.json").write_text(json.dumps(BASE, indent=2), encoding="utf-8")
    # Google's vocabulary layout: [PAD], [unused1..99], [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103
    ours = [t for t in helpers.load_vocab(helpers.EMBEDDED_BERT_DIR) if not t.startswith("[")]
    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(1, 100)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] + ours
    tokens += [f"[unused{i}]" for i in range(100, 100 + BASE["vocab_size"] - len(tokens))]
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return folder


def test_google_layout_checkpoint_loads_and_its_attention_can_be_read(google_base_dir, monkeypatch):
    monkeypatch.setenv("BERT_DIR", str(google_base_dir))
    assert helpers.bert_dir() == google_base_dir
    assert helpers.check_checkpoint(training=True)["hidden_size"] == 768
    tokenizer = helpers.load_tokenizer()
    assert tokenizer.encode("好")[0][:1] == [101]  # Google's [CLS] id, not ours
    bert = helpers.load_bert(seq_len=SEQ_LEN)
    stored = tf.train.load_variable(str(google_base_dir / "bert_model.ckpt"),
                                    "bert/encoder/layer_1/output/dense/kernel")
    np.testing.assert_array_equal(bert.get_layer("Encoder-2-FeedForward").get_weights()[2], stored)
    classifier = helpers.build_classifier(bert)
    counts = helpers.bert_parameter_counts(BASE, seq_len=SEQ_LEN)
    assert classifier.count_params() == sum(counts.values()) + 768 + 1
    token_ids, segment_ids = helpers.encode_texts(["这家酒店的服务很好。", "太差了"], tokenizer, SEQ_LEN)
    maps = helpers.attention_maps(bert, token_ids, segment_ids)
    assert maps.shape == (2, 2, 12, SEQ_LEN, SEQ_LEN)
    np.testing.assert_allclose(maps.sum(-1), 1, atol=1e-5)
    assert maps[1][..., token_ids[1] == 0].max() < 1e-6
    pretraining = helpers.load_bert(seq_len=SEQ_LEN, training=True)
    assert [o.shape[-1] for o in pretraining.outputs] == [21128, 2]


def test_notebook_02_runs_unchanged_on_the_google_layout_checkpoint(google_base_dir, monkeypatch, tmp_path):
    """The same notebook, with BERT_DIR pointing at another checkpoint: every assert in it must hold. It writes
    to its own outputs folder: nbval runs notebook 02 on the other worker, and the two runs saving and loading
    one classifier file at the same moment made a load fail (zipfile: Bad CRC-32)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(helpers.ROOT / "notebooks" / "02_model_assembly.ipynb", as_version=4)
    monkeypatch.setenv("BERT_DIR", str(google_base_dir))  # the kernel inherits this process's environment
    monkeypatch.setenv("TUTORIAL_QUICK", "1")
    monkeypatch.setenv("TUTORIAL_OUTPUTS", str(tmp_path))
    nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(helpers.ROOT / "notebooks")}}).execute()
    printed = "\n".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                        for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    total = sum(helpers.bert_parameter_counts(BASE, seq_len=128).values()) + BASE["hidden_size"] + 1
    assert f"total {total:,}" in printed  # the breakdown was computed for the Google-layout model
