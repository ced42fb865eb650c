"""Shared plumbing for the BERT tutorial notebooks.

Import it first in every notebook: it selects Keras 2 (tf-keras) for keras-bert before TensorFlow
loads, sets up a CJK font for matplotlib, and finds the data and the active checkpoint. What the
notebooks teach stays in the notebooks; this module holds what several of them share, the paths one
notebook writes for another, and the keras-bert workarounds and plumbing (checkpoint export, mixed
precision, attention extraction) that would distract from a lesson. Each public function's docstring
says which notebooks use it.
"""

from __future__ import annotations

# --- environment: must run before TensorFlow is imported ------------------------------------
import os
import sys

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    raise RuntimeError(
        "TensorFlow was imported before helpers, so it is using Keras 3, which keras-bert does not "
        "support. Restart the kernel (or the Python process) and run `import helpers` before "
        "importing tensorflow or keras_bert."
    )
os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tensorflow.keras -> tf-keras (Keras 2)
# hide TensorFlow's C++ log lines below FATAL: info and warnings, and error-level notices such as the one some
# CPUs log at the first integer transpose ("oneDNN supports DT_INT32 only on platforms with AVX-512"), which
# would land in a training cell's output. A real error still reaches Python as an exception with its message.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow's pooling (BFC) allocator for CPU memory: by default each training step mallocs and frees
# hundreds of MB, and where freed pages go back to the system (virtual machines with free page reporting,
# like the one the stored outputs ran on) the next step faults every page in again, which slows training.
# The pool keeps and reuses the buffers; results are identical (tests/test_helpers.py counts the faults).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

import json  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Iterable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import NamedTuple  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.stats  # noqa: E402


class _NativeStderrSilenced:
    """Send the process's C-level stderr (file descriptor 2) to a temporary file for a block, and show
    it only if the block fails. TensorFlow's native start-up lines ("All log messages before
    absl::InitializeLog() ...", "Could not find cuda drivers", "failed call to cuInit", the CPU
    feature notice) are written before TF_CPP_MIN_LOG_LEVEL takes effect, so that setting cannot hide
    them; in Jupyter they would fill the first cell's output."""

    def __enter__(self):
        import tempfile

        sys.stderr.flush()
        self.saved, self.captured = os.dup(2), tempfile.TemporaryFile()
        os.dup2(self.captured.fileno(), 2)

    def __exit__(self, kind, error, traceback):
        os.dup2(self.saved, 2)
        os.close(self.saved)
        if kind is not None:  # the import failed: show what TensorFlow printed
            self.captured.seek(0)
            sys.stderr.write(self.captured.read().decode(errors="replace"))
        self.captured.close()


with _NativeStderrSilenced():
    import tensorflow as tf  # noqa: E402

    tf.config.list_physical_devices()  # device discovery prints its CUDA lines here, not in a later cell

if not tf.keras.layers.Dense.__module__.startswith("tf_keras"):
    raise RuntimeError(
        "tensorflow.keras is not tf-keras although TF_USE_LEGACY_KERAS=1. Install the pinned "
        "requirements (`pip install -r requirements.txt`, which includes tf-keras) and restart."
    )

import keras_bert  # noqa: E402

keras = tf.keras
tf.get_logger().setLevel("ERROR")  # TensorFlow's Python INFO/WARNING lines (distribution, retracing)
# keras-bert (through keras-multi-head) passes one unseeded GlorotNormal instance to all four attention
# projections, and tf-keras warns that it "will return identical values each time". That is exactly
# why a fresh model starts with Wq == Wk == Wv == Wo; it is harmless for every model loaded from a
# checkpoint (the weights are overwritten) and reinitialize_attention fixes it for models trained from
# scratch (notebooks 03 and 05 show and assert both). So that one warning is hidden, and no other.
warnings.filterwarnings("ignore", category=UserWarning,
                        message=r"The initializer GlorotNormal is unseeded and being called multiple times")

# --- paths and profile ------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parent
DATA_DIR = ROOT / "data"
OUTPUTS_DIR = Path(os.environ.get("TUTORIAL_OUTPUTS") or ROOT / "outputs")  # what runs write (git-ignored)
EMBEDDED_BERT_DIR = DATA_DIR / "mini-bert-zh"  # v1: notebook 05's pretraining run, exported (and its vocabulary)
# the checkpoint notebooks 01-04 use unless BERT_DIR says otherwise: v1 continued by data/pretrain.py (issue #11);
# same vocabulary, shape and variable names as v1, so either folder drops into every loader here
DEFAULT_BERT_DIR = DATA_DIR / "mini-bert-zh-v2"
GOOGLE_CHINESE_CONFIG = DATA_DIR / "chinese_L-12_H-768_A-12" / "bert_config.json"


PROFILES = ("full", "workshop", "quick")


def run_profile() -> str:
    """Which version of the notebooks to run, from the environment: TUTORIAL_PROFILE=full (the default:
    the runs the stored outputs come from), workshop (every notebook in about 10 minutes on a laptop CPU,
    for teaching) or quick (the tests' small version); TUTORIAL_QUICK=1 still means quick.
    Read once at import into PROFILE and QUICK, which 02-05 use."""
    quick = os.environ.get("TUTORIAL_QUICK", "0").strip()
    if quick not in ("", "0", "1"):
        raise ValueError(f"TUTORIAL_QUICK={quick!r}; use 1 for the quick test profile or 0 (default) for the full one")
    name = os.environ.get("TUTORIAL_PROFILE", "").strip().lower() or ("quick" if quick == "1" else "full")
    if name not in PROFILES:
        raise ValueError(f"TUTORIAL_PROFILE={name!r}; use one of {', '.join(PROFILES)}")
    if quick == "1" and name != "quick":
        raise ValueError(f"TUTORIAL_QUICK=1 and TUTORIAL_PROFILE={name} disagree: unset one of them")
    return name


PROFILE = run_profile()
"""The run profile: "full", "workshop" or "quick" (see run_profile)."""
QUICK = PROFILE == "quick"
"""True in the quick profile: the tests' small, fast version of every notebook."""


# what notebook 03 writes and notebook 04 and notebooks/run_all.py read (other profiles' runs write beside it)
def _profile_suffix(quick: bool | None) -> str:
    profile = PROFILE if quick is None else "quick" if quick else "full"
    return "" if profile == "full" else f"-{profile}"


def classifier_path(quick: bool | None = None) -> Path:
    """Where notebook 03 saves its fine-tuned classifier: the current profile's by default, the quick
    (True) or full (False) profile's on request. Used in 03, 04."""
    return OUTPUTS_DIR / f"03_training{_profile_suffix(quick)}" / "classifier.keras"


def results_path(quick: bool | None = None) -> Path:
    """Where notebook 03 writes its results (JSON), by profile as classifier_path. Used in 03 and
    notebooks/run_all.py."""
    return OUTPUTS_DIR / "metrics" / f"03_training{_profile_suffix(quick)}.json"


def output_dir(*parts: str) -> Path:
    """A folder under outputs/ (git-ignored), created if needed. Used in 02."""
    path = OUTPUTS_DIR.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_everything(seed: int = 2019) -> None:
    """Seed Python, NumPy and TensorFlow (Keras's set_random_seed seeds all three), so that reruns
    give the same numbers on the same machine. Used in 02-05."""
    keras.utils.set_random_seed(seed)


# --- matplotlib with a CJK font -------------------------------------------------------------
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
             "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "PingFang SC", "Microsoft YaHei",
             "SimHei", "Heiti SC", "Noto Sans CJK JP", "Arial Unicode MS")
FONT_INSTALL_HINT = ("Install one: `sudo apt-get install fonts-wqy-microhei` (Debian/Ubuntu), "
                     "`brew install --cask font-noto-sans-cjk-sc` (macOS); Windows ships Microsoft YaHei. "
                     "Then delete matplotlib's font cache (~/.cache/matplotlib) and restart the kernel.")


def use_cjk_font() -> str | None:
    """Put the first installed CJK font first in matplotlib's sans-serif list and return its name.

    Returns None, with a warning naming the install command, when no CJK font is installed: Chinese
    labels would otherwise render as empty boxes.
    Called at import (CJK_FONT, shown in 01); every notebook with Chinese in a figure relies on it.
    """
    import matplotlib
    from matplotlib import font_manager

    def find() -> str | None:
        installed = {font.name for font in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in installed), None)

    family = find()
    if family is None:  # matplotlib's font cache predates a font installed since: add system CJK fonts
        for path in font_manager.findSystemFonts():
            if any(key in Path(path).name.lower() for key in ("wqy", "cjk", "sourcehan", "msyh", "simhei", "pingfang")):
                font_manager.fontManager.addfont(path)
        family = find()
    if family is None:
        warnings.warn("No CJK font found: Chinese text in figures will show as boxes. " + FONT_INSTALL_HINT,
                      stacklevel=2)
        return None
    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["font.sans-serif"] = [family] + [
        name for name in matplotlib.rcParams["font.sans-serif"] if name != family]
    matplotlib.rcParams["axes.unicode_minus"] = False  # some CJK fonts lack U+2212 (minus sign)
    return family


CJK_FONT = use_cjk_font()

# --- the review data --------------------------------------------------------------------------
REVIEW_COLUMNS = ["text", "label", "split"]
SPLIT_NAMES = ("train", "val", "test")


def _csv_line_numbers(mask: pd.Series, limit: int = 10) -> str:
    """The CSV line numbers of the rows where mask is True, as text ("2, 5 and 3 more")."""
    rows = [int(i) + 2 for i in np.flatnonzero(mask.to_numpy())]  # +2: header line, 1-based lines
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(map(str, rows[:limit])) + more


def load_reviews(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Load and validate the review CSV (default: data/reviews.csv).

    Returns a DataFrame with columns text (str), label (int, 1 = positive) and split
    ('train', 'val' or 'test'). Raises ValueError naming the offending CSV lines for missing or
    extra columns, empty texts, labels outside {0, 1} and unknown split names.
    Used in 01-05.
    """
    path = Path(path) if path is not None else DATA_DIR / "reviews.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; rebuild it with `python data/build_data.py`")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(df.columns) != REVIEW_COLUMNS:
        missing = [c for c in REVIEW_COLUMNS if c not in df.columns]
        extra = [c for c in df.columns if c not in REVIEW_COLUMNS]
        raise ValueError(f"{path}: expected columns {REVIEW_COLUMNS}, got {list(df.columns)} "
                         f"(missing: {missing or 'none'}, extra: {extra or 'none'})")
    problems = []
    empty = df["text"].str.strip() == ""
    if empty.any():
        problems.append(f"empty text on line(s) {_csv_line_numbers(empty)}")
    bad_label = ~df["label"].isin(["0", "1"])
    if bad_label.any():
        problems.append(f"label not 0 or 1 on line(s) {_csv_line_numbers(bad_label)} "
                        f"(values: {sorted(set(df['label'][bad_label]))[:5]})")
    bad_split = ~df["split"].isin(SPLIT_NAMES)
    if bad_split.any():
        problems.append(f"split not one of {SPLIT_NAMES} on line(s) {_csv_line_numbers(bad_split)} "
                        f"(values: {sorted(set(df['split'][bad_split]))[:5]})")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return df.astype({"label": "int64"})


# --- the active checkpoint (BERT_DIR or the embedded one) -----------------------------------
CHECKPOINT_FILES = ("bert_config.json", "vocab.txt", "bert_model.ckpt.index", "bert_model.ckpt.data-00000-of-00001")
GOOGLE_HINT = ("Google's chinese_L-12_H-768_A-12 has this layout: download and unzip "
               "https://storage.googleapis.com/bert_models/2018_11_03/chinese_L-12_H-768_A-12.zip "
               "(or call helpers.download_google_chinese_bert() with internet), then set BERT_DIR to the "
               "unzipped folder. Unset BERT_DIR to use the embedded data/mini-bert-zh-v2.")


def bert_dir(path: str | os.PathLike | None = None, files: Sequence[str] = CHECKPOINT_FILES) -> Path:
    """The checkpoint folder in use: `path`, else $BERT_DIR, else the embedded data/mini-bert-zh-v2.

    Raises FileNotFoundError when the folder or one of `files` (default: all of Google's) is missing.
    Used in 01-03 (and by every loader here).
    """
    source = "path" if path is not None else "BERT_DIR" if os.environ.get("BERT_DIR") else None
    folder = Path(path if path is not None else os.environ.get("BERT_DIR") or DEFAULT_BERT_DIR)
    label = f"{source}={folder}" if source else f"the embedded checkpoint {folder}"
    if not folder.is_dir():
        raise FileNotFoundError(f"{label} is not a folder. {GOOGLE_HINT}")
    missing = [name for name in files if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(f"{label} has no {', '.join(missing)}; expected the layout of Google's "
                                f"chinese_L-12_H-768_A-12 ({', '.join(CHECKPOINT_FILES)}). {GOOGLE_HINT}")
    return folder


def download_google_chinese_bert() -> Path:
    """Download and unzip Google's chinese_L-12_H-768_A-12 (about 400 MB) with keras-bert's
    get_pretrained, into Keras's cache (~/.keras/datasets), and return the folder for BERT_DIR.

    Needs internet. Offline it raises ConnectionError saying how to get the files another way.
    Named in the README and notebook 02 for readers with internet.
    """
    try:
        folder = keras_bert.get_pretrained(keras_bert.PretrainedList.chinese_base)
    except Exception as error:  # get_file raises URLError, HTTPError or a plain Exception offline
        raise ConnectionError(
            f"could not download Google's chinese_L-12_H-768_A-12 ({type(error).__name__}: {error}). "
            "Without internet, copy the unzipped folder to this machine and set BERT_DIR to it; "
            "the embedded data/mini-bert-zh-v2 works offline.") from error
    return bert_dir(folder)


def load_config(folder: str | os.PathLike | None = None) -> dict:
    """bert_config.json of the active checkpoint (see bert_dir) as a dict. Used in 03."""
    return json.loads((bert_dir(folder) / "bert_config.json").read_text(encoding="utf-8"))


def load_vocab(folder: str | os.PathLike | None = None) -> dict[str, int]:
    """vocab.txt of the active checkpoint as {token: id}, in file order (keras-bert's loader). Used in 01-05."""
    return keras_bert.load_vocabulary(str(bert_dir(folder, files=["vocab.txt"]) / "vocab.txt"))


def load_tokenizer(folder: str | os.PathLike | None = None) -> keras_bert.Tokenizer:
    """keras-bert's (uncased) Tokenizer for the active checkpoint's vocabulary. Used in 02-04."""
    return keras_bert.Tokenizer(load_vocab(folder))


def encode_texts(texts: Iterable[str], tokenizer: keras_bert.Tokenizer, seq_len: int,
                 progress: bool | None = None, return_lengths: bool = False):
    """Encode texts for BERT: (token_ids, segment_ids), int32 arrays of shape [n, seq_len].

    Row i equals keras-bert's `tokenizer.encode(texts[i], max_len=seq_len)`: [CLS] text [SEP],
    truncated to seq_len and padded with 0. With return_lengths=True a third array gives each text's
    full length in tokens before truncation (each text is tokenized once either way). A progress bar
    appears for more than 5,000 texts in an interactive terminal (or as `progress` says). Raises
    TypeError for a non-string and ValueError for an empty text. Used in 01-04.
    """
    if isinstance(texts, str):
        raise TypeError("encode_texts takes a list of texts, not one string: use encode_texts([text], ...)")
    if not isinstance(seq_len, (int, np.integer)) or seq_len < 2:
        raise ValueError(f"seq_len={seq_len!r}; it must be an int >= 2 (room for [CLS] and [SEP])")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__} ({text!r}), not str")
        if not text.strip():
            raise ValueError(f"texts[{i}] is empty or only whitespace; drop it or replace it before encoding")
    token_ids = np.zeros((len(texts), seq_len), dtype=np.int32)
    segment_ids = np.zeros((len(texts), seq_len), dtype=np.int32)  # one segment: all 0
    lengths = np.zeros(len(texts), dtype=np.int64)
    show = len(texts) > 5000 and sys.stderr.isatty() if progress is None else progress
    if show:
        from tqdm import tqdm
        texts = tqdm(texts, desc="encoding", unit="text", mininterval=2, file=sys.stderr)
    for i, text in enumerate(texts):
        ids = tokenizer.encode(text)[0]  # [CLS] text [SEP], untruncated
        lengths[i] = len(ids)
        if len(ids) > seq_len:  # keras-bert's truncation: keep [CLS], the first seq_len - 2 tokens, [SEP]
            ids = ids[:seq_len - 1] + ids[-1:]
        token_ids[i, :len(ids)] = ids
    return (token_ids, segment_ids, lengths) if return_lengths else (token_ids, segment_ids)


# --- Google's checkpoint format -------------------------------------------------------------
class CheckpointVariable(NamedTuple):
    """One variable of Google's BERT checkpoint layout and where keras-bert keeps it."""

    name: str          # Google's variable name
    layer: str         # keras-bert layer name
    index: int         # index into that layer's get_weights()
    transposed: bool   # stored transposed relative to keras-bert
    shape: tuple       # the shape in the checkpoint


def google_variable_map(config: dict, training: bool = False) -> list[CheckpointVariable]:
    """The checkpoint layout in one table: how keras-bert's layers map onto the variables of Google's
    BERT checkpoints, with each variable's shape. The inverse of keras_bert.load_model_weights_from_checkpoint:
      bert/embeddings/{word,position,token_type}_embeddings  Embedding-{Token,Position,Segment}
      bert/embeddings/LayerNorm/{gamma,beta}                  Embedding-Norm
      bert/encoder/layer_i/attention/self/{query,key,value}   Encoder-(i+1)-MultiHeadSelfAttention (Wq, Wk, Wv)
      bert/encoder/layer_i/attention/output/dense             Encoder-(i+1)-MultiHeadSelfAttention (Wo)
      bert/encoder/layer_i/attention/output/LayerNorm         Encoder-(i+1)-MultiHeadSelfAttention-Norm
      bert/encoder/layer_i/{intermediate,output}/dense        Encoder-(i+1)-FeedForward (W1, W2)
      bert/encoder/layer_i/output/LayerNorm                   Encoder-(i+1)-FeedForward-Norm
    and with training=True the pretraining heads:
      cls/predictions/transform/{dense,LayerNorm}             MLM-Dense, MLM-Norm
      cls/predictions/output_bias                             MLM-Sim (output weights tied to the token embeddings)
      bert/pooler/dense                                       NSP-Dense
      cls/seq_relationship/output_{weights,bias}              NSP (weights stored transposed, [2, hidden])
    Used by export_checkpoint and check_checkpoint (notebook 05, tests).
    """
    h, f, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    V = CheckpointVariable

    def dense(google, layer, first, n_in, n_out):
        return [V(f"{google}/kernel", layer, first, False, (n_in, n_out)),
                V(f"{google}/bias", layer, first + 1, False, (n_out,))]

    def norm(google, layer):
        return [V(f"{google}/gamma", layer, 0, False, (h,)), V(f"{google}/beta", layer, 1, False, (h,))]

    rows = [V("bert/embeddings/word_embeddings", "Embedding-Token", 0, False, (v, h)),
            V("bert/embeddings/position_embeddings", "Embedding-Position", 0, False,
              (config["max_position_embeddings"], h)),
            V("bert/embeddings/token_type_embeddings", "Embedding-Segment", 0, False,
              (config.get("type_vocab_size", 2), h)),
            *norm("bert/embeddings/LayerNorm", "Embedding-Norm")]
    for i in range(config["num_hidden_layers"]):
        google, ours = f"bert/encoder/layer_{i}", f"Encoder-{i + 1}"
        attention = f"{ours}-MultiHeadSelfAttention"
        for j, part in enumerate(("self/query", "self/key", "self/value", "output/dense")):
            rows += dense(f"{google}/attention/{part}", attention, 2 * j, h, h)
        rows += norm(f"{google}/attention/output/LayerNorm", f"{attention}-Norm")
        rows += dense(f"{google}/intermediate/dense", f"{ours}-FeedForward", 0, h, f)
        rows += dense(f"{google}/output/dense", f"{ours}-FeedForward", 2, f, h)
        rows += norm(f"{google}/output/LayerNorm", f"{ours}-FeedForward-Norm")
    if training:
        rows += [*dense("cls/predictions/transform/dense", "MLM-Dense", 0, h, h),
                 *norm("cls/predictions/transform/LayerNorm", "MLM-Norm"),
                 V("cls/predictions/output_bias", "MLM-Sim", 0, False, (v,)),
                 *dense("bert/pooler/dense", "NSP-Dense", 0, h, h),
                 V("cls/seq_relationship/output_weights", "NSP", 0, True, (2, h)),
                 V("cls/seq_relationship/output_bias", "NSP", 1, False, (2,))]
    return rows


def expected_shapes(config: dict, training: bool = False) -> dict[str, tuple[int, ...]]:
    """The shape of every Google checkpoint variable that keras-bert reads: the map's shape column."""
    return {row.name: row.shape for row in google_variable_map(config, training)}


def export_checkpoint(model: keras.Model, config: dict, folder: str | os.PathLike,
                      vocab: Sequence[str] | None = None) -> Path:
    """Write a keras-bert model as a Google-format BERT checkpoint: the inverse of keras-bert's loader.

    Writes folder/bert_config.json and folder/bert_model.ckpt.{index,data-00000-of-00001} with the
    variable names of google_variable_map (pretraining heads included when the model has them), and
    vocab.txt when `vocab` (tokens in id order) is given. Refuses to overwrite existing files.
    Used in 05 and data/pretrain.py.
    """
    folder = Path(folder)
    targets = [folder / name for name in CHECKPOINT_FILES if name != "vocab.txt" or vocab is not None]
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise FileExistsError(f"export_checkpoint will not overwrite {', '.join(existing)}; "
                              "choose a new folder or delete them first")
    layer_names = {layer.name for layer in model.layers}
    training = "MLM-Sim" in layer_names
    names, tensors = [], []
    for name, layer, index, transposed, _ in google_variable_map(config, training):
        value = model.get_layer(layer).get_weights()[index]
        names.append(name)
        tensors.append(tf.constant(value.T if transposed else value, dtype=tf.float32))
    shapes = expected_shapes(config, training)
    wrong = [f"{n}: {tuple(t.shape)} != {shapes[n]}" for n, t in zip(names, tensors) if tuple(t.shape) != shapes[n]]
    if wrong:
        raise ValueError("the model does not match the config: " + "; ".join(wrong))
    folder.mkdir(parents=True, exist_ok=True)
    tf.raw_ops.SaveV2(prefix=str(folder / "bert_model.ckpt"), tensor_names=names,
                      shape_and_slices=[""] * len(names), tensors=tensors)
    (folder / "bert_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if vocab is not None:
        (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return folder


def tiny_checkpoint(folder: str | os.PathLike | None = None) -> Path:
    """A one-layer, 64-wide BERT with random weights and the embedded checkpoint's vocabulary, in
    Google's format, made once (in under a second) under outputs/. The quick profile fine-tunes it
    instead of the embedded model: the code paths are the same, and each new model costs a few
    seconds to build and trace instead of about twenty. Used in 03.
    """
    folder = Path(folder) if folder is not None else OUTPUTS_DIR / "tiny-bert-zh"
    if not (folder / "bert_model.ckpt.index").exists():
        vocab = load_vocab(EMBEDDED_BERT_DIR)
        config = {**load_config(EMBEDDED_BERT_DIR), "hidden_size": 64, "num_hidden_layers": 1,
                  "num_attention_heads": 2, "intermediate_size": 128}
        model = keras_bert.get_model(token_num=len(vocab), pos_num=config["max_position_embeddings"], seq_len=None,
                                     embed_dim=64, transformer_num=1, head_num=2, feed_forward_dim=128, training=True)
        reinitialize_attention(model, seed=0)
        export_checkpoint(model, config, folder, vocab=list(vocab))
    return folder


def setting(name: str, default: str, choices: Sequence[str]) -> str:
    """The environment variable `name` (default when unset), which must be one of `choices`: how the
    tests and run_all.py choose a notebook's device settings without editing it. Used in 03."""
    value = os.environ.get(name, "").strip() or default
    if value not in choices:
        raise ValueError(f"{name}={value!r}; use one of {', '.join(choices)}")
    return value


def check_checkpoint(folder: str | os.PathLike | None = None, training: bool = False) -> dict:
    """Check that config, vocabulary and checkpoint of a folder agree; return the config.

    Raises ValueError naming every disagreement: vocabulary size, missing variables, wrong shapes.
    Used by load_bert (02-05) and the tests.
    """
    folder = bert_dir(folder)
    config = load_config(folder)
    problems = []
    required = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "max_position_embeddings", "hidden_act")
    missing_keys = [key for key in required if key not in config]
    if missing_keys:
        raise ValueError(f"{folder}/bert_config.json lacks {', '.join(missing_keys)}")
    vocab_size = len(load_vocab(folder))
    if vocab_size != config["vocab_size"]:
        problems.append(f"vocab.txt has {vocab_size} tokens but bert_config.json says "
                        f"vocab_size={config['vocab_size']}")
    stored = dict(tf.train.list_variables(str(folder / "bert_model.ckpt")))
    expected = expected_shapes(config, training)
    missing = [f"checkpoint lacks {name}" for name in expected if name not in stored]
    wrong = [f"{name} has shape {tuple(stored[name])}, the config implies {shape}"
             for name, shape in expected.items() if name in stored and tuple(stored[name]) != shape]
    for group in (missing, wrong):
        problems += group[:4] + ([f"... and {len(group) - 4} more like it"] if len(group) > 4 else [])
    if problems:
        raise ValueError(f"config, vocabulary and checkpoint in {folder} disagree: " + "; ".join(problems))
    return config


def load_bert(seq_len: int | None = 128, training: bool = False, trainable=None, output_layer_num: int = 1,
              folder: str | os.PathLike | None = None) -> keras.Model:
    """Load the active checkpoint (folder, $BERT_DIR or data/mini-bert-zh-v2) with keras-bert's loader,
    after check_checkpoint has confirmed that config, vocabulary and weights agree.

    `trainable` is True, False, None (= training) or a list of layer-name prefixes: only layers whose
    names start with one of them train. keras-bert's own prefix-list form crashes on tf-keras 2.21
    (it passes the list to LayerNormalization(trainable=...)), so the prefixes are applied here.
    Used in 02-05.
    """
    folder = bert_dir(folder)
    check_checkpoint(folder, training=training)
    prefixes = tuple(trainable) if isinstance(trainable, (list, tuple, set)) else None
    model = keras_bert.load_trained_model_from_checkpoint(
        str(folder / "bert_config.json"), str(folder / "bert_model.ckpt"), training=training,
        trainable=True if prefixes is not None else trainable, output_layer_num=output_layer_num, seq_len=seq_len)
    if prefixes is not None:
        for layer in model.layers:
            layer.trainable = layer.name.startswith(prefixes)
    return model


# --- training from random initialisation ----------------------------------------------------
def reinitialize_attention(model: keras.Model, seed: int) -> None:
    """Give every attention projection (Wq, Wk, Wv, Wo) its own seeded Glorot-normal values.

    A freshly built keras-bert model on tf-keras 2.21 starts with Wq == Wk == Wv == Wo in every
    layer: keras-multi-head reuses one unseeded initializer instance, and tf-keras then returns the
    same values on every call. Anything trained from random initialisation needs this fix.
    Used in 03, 05 and data/pretrain.py.
    """
    for i, layer in enumerate(attention_layers(model)):
        weights = layer.get_weights()
        for j, w in enumerate(weights):
            if w.ndim == 2:  # kernels; biases stay zero
                init = keras.initializers.GlorotNormal(seed=seed * 1000 + i * 10 + j)
                weights[j] = init(w.shape).numpy()
        layer.set_weights(weights)


@keras.saving.register_keras_serializable(package="bert_tutorial")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """BERT's learning-rate schedule: linear warm-up from 0 to `peak` over `warmup_steps`,
    then linear decay to 0 at `total_steps`. (keras-bert's AdamWarmup does the same but is broken
    on current tf-keras: AttributeError '_set_hyper'.)
    Used in 03-05.
    """

    def __init__(self, peak: float, warmup_steps: int, total_steps: int):
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}")
        self.peak, self.warmup_steps, self.total_steps = float(peak), int(warmup_steps), int(total_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = step / max(self.warmup_steps, 1)
        decay = (self.total_steps - step) / (self.total_steps - self.warmup_steps)
        return self.peak * tf.clip_by_value(tf.minimum(warmup, decay), 0.0, 1.0)

    def get_config(self) -> dict:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


# --- the classifier of notebooks 02-04 --------------------------------------------------------
CLASSIFIER_HEADS = ("cls", "mean", "max")  # how build_classifier pools the sequence output


def build_classifier(bert: keras.Model, head: str = "cls") -> keras.Model:
    """BERT plus the original tutorial's sentiment head: pool the sequence output, then Dense(1, sigmoid).

    head="cls" takes the [CLS] vector, as the original `Lambda(lambda x: x[:, 0])` does, but with
    keras-bert's `Extract(index=0)` layer, which computes the same and can be saved and reloaded;
    "mean" and "max" pool over the real (non-padding) tokens, using the mask keras-bert propagates.
    `bert` is a model from load_bert(training=False) (two inputs, one sequence output).
    Used in 02-04.
    """
    if head not in CLASSIFIER_HEADS:
        raise ValueError(f"head={head!r}; choose one of {CLASSIFIER_HEADS}")
    if len(bert.inputs) != 2 or len(bert.outputs) != 1:
        raise ValueError("build_classifier needs a BERT body with inputs (token ids, segment ids) and one "
                         "sequence output: load it with load_bert(training=False)")
    sequence = bert.output
    if head == "cls":
        pooled = keras_bert.layers.Extract(index=0, name="CLS")(sequence)
    elif head == "mean":
        pooled = keras.layers.GlobalAveragePooling1D(name="Mean-Pool")(sequence)
    else:
        pooled = keras_bert.layers.MaskedGlobalMaxPool1D(name="Max-Pool")(sequence)
    # the output unit stays float32 under mixed precision, as TensorFlow's guide recommends
    output = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="Sentiment")(pooled)
    return keras.Model(bert.inputs, output, name=f"bert_{head}_classifier")


def predict_sentiment(model: keras.Model, texts: Iterable[str], tokenizer: keras_bert.Tokenizer,
                      seq_len: int | None = None) -> pd.DataFrame:
    """P(positive) for each text from a sentiment classifier, as a DataFrame (text, tokens, positive).

    `texts` may be any iterable of strings (a list, a Series, a generator). `seq_len` defaults to the
    model's input length. `tokens` counts the text's tokens with [CLS] and [SEP] (more than seq_len
    means it was truncated). Bad input (a single string, empty or non-string texts) raises the same
    clear errors as encode_texts. Used in 03, 04.
    """
    if isinstance(texts, str):
        raise TypeError("predict_sentiment takes a list of texts, not one string: use [text]")
    texts = list(texts)
    if seq_len is None:
        seq_len = model.inputs[0].shape[1]
        if seq_len is None:
            raise ValueError("the model accepts any length: pass seq_len (for example 128)")
    token_ids, segment_ids, lengths = encode_texts(texts, tokenizer, seq_len, return_lengths=True)
    probabilities = model.predict([token_ids, segment_ids], batch_size=64, verbose=0)[:, 0]
    return pd.DataFrame({"text": texts, "tokens": lengths, "positive": probabilities.astype(float)})


def custom_objects() -> dict:
    """The objects keras.models.load_model needs to rebuild a saved build_classifier model exactly, and no
    more: keras-bert's embedding, attention, feed-forward, layer-norm and pooling layers, and its GELU.
    Without "gelu" or "LayerNormalization" a model still loads, silently with tf-keras's own versions
    (the exact erf GELU, another epsilon), and predicts slightly differently. keras-bert's
    get_custom_objects() lacks MaskedGlobalMaxPool1D (the "max" head). Used in 02-04."""
    keras_bert_objects = keras_bert.get_custom_objects()
    objects = {name: keras_bert_objects[name] for name in
               ("TokenEmbedding", "PositionEmbedding", "MultiHeadAttention", "FeedForward", "LayerNormalization",
                "gelu", "Extract")}
    objects["MaskedGlobalMaxPool1D"] = keras_bert.layers.MaskedGlobalMaxPool1D
    return objects


def bert_parameter_counts(config: dict, seq_len: int | None = None) -> dict[str, int]:
    """Parameters of keras-bert's BERT body, part by part, computed from bert_config.json alone.

    keras-bert keeps only the first min(seq_len, max_position_embeddings) position embeddings.
    Used in 02, 03.
    """
    h, f, v, n = config["hidden_size"], config["intermediate_size"], config["vocab_size"], config["num_hidden_layers"]
    positions = min(seq_len or config["max_position_embeddings"], config["max_position_embeddings"])
    layer_norm = 2 * h                     # gamma and beta
    return {
        "token embeddings": v * h,
        "position embeddings": positions * h,
        "segment embeddings": config.get("type_vocab_size", 2) * h,
        "embedding layer norm": layer_norm,
        "self-attention (Q, K, V, O)": n * 4 * (h * h + h),
        "attention layer norm": n * layer_norm,
        "feed-forward (two dense layers)": n * (h * f + f + f * h + h),
        "feed-forward layer norm": n * layer_norm,
    }


# --- mixed precision ------------------------------------------------------------------------
def _attention_call(self, inputs, mask=None, **kwargs):
    """keras-self-attention's ScaledDotProductAttention.call with the scores, the mask and the softmax
    in float32 and the output in the inputs' dtype. (The original casts the scale and the mask to
    K.floatx(), float32, and fails on bfloat16/float16 inputs.) Identical results in float32."""
    query, key, value = inputs if isinstance(inputs, list) else (inputs, inputs, inputs)
    if isinstance(mask, list):
        mask = mask[1]
    scores = tf.matmul(tf.cast(query, tf.float32), tf.cast(key, tf.float32), transpose_b=True)
    scores /= tf.sqrt(tf.cast(tf.shape(query)[-1], tf.float32))
    if self.history_only:
        query_len, key_len = tf.shape(query)[1], tf.shape(key)[1]
        future = tf.range(key_len)[None, :] > tf.range(query_len)[:, None]
        scores -= 10000.0 * tf.cast(future, tf.float32)[None]
    if mask is not None:
        scores -= 10000.0 * (1.0 - tf.cast(tf.expand_dims(mask, axis=-2), tf.float32))
    self.intensity = scores
    self.attention = tf.nn.softmax(scores, axis=-1)
    output = tf.matmul(tf.cast(self.attention, value.dtype), value)
    return [output, self.attention] if self.return_attention else output


def _max_pool_call(self, inputs, mask=None):
    """keras-bert's MaskedGlobalMaxPool1D.call, following the inputs' dtype instead of K.floatx()."""
    if mask is not None:
        inputs -= tf.cast(tf.expand_dims(1.0 - tf.cast(mask, tf.float32), -1) * 1e4, inputs.dtype)
    return tf.reduce_max(inputs, axis=-2)


def _follow_input_dtypes() -> None:
    """Make the two keras-bert layers that hard-code float32 (ScaledDotProductAttention and
    MaskedGlobalMaxPool1D) follow their inputs' dtype, and stop Keras from casting the attention's
    inputs to the global policy. Done once, when helpers is imported, so that a
    model saved under a mixed policy loads and runs in any process (notebook 04 loading 03's classifier
    from a GPU run, predict_sentiment); float32 results are unchanged."""
    from keras_self_attention import ScaledDotProductAttention

    for layer, call in ((ScaledDotProductAttention, _attention_call),
                        (keras_bert.layers.MaskedGlobalMaxPool1D, _max_pool_call)):
        _UNPATCHED.setdefault(layer, layer.call)  # the libraries' own call, kept for the tests
        layer.call = call
    # MultiHeadAttention creates its ScaledDotProductAttention inside call(), under the *global* policy,
    # which is float32 in a process that loads a mixed model; Keras would then cast the float16 inputs
    # to float32 and the output would not match Wo. Without autocast the inner layer keeps its inputs'
    # dtype (the parent's), and float32 inputs stay float32.
    init = _UNPATCHED.setdefault((ScaledDotProductAttention, "__init__"), ScaledDotProductAttention.__init__)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("autocast", False)
        init(self, *args, **kwargs)

    ScaledDotProductAttention.__init__ = __init__


_UNPATCHED: dict = {}
_follow_input_dtypes()


def cpu_description(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> dict:
    """This machine's CPU as the kernel describes its first processor: model name, family/model, the core count
    and whether it has bfloat16 matrix instructions (AVX-512 BF16 or AMX-BF16). Without them TensorFlow still
    runs mixed_bfloat16, emulated and slower than float32; with them it trains faster. Cloud machines of one
    name differ here (this project's 2-core "AMD EPYC" has been a Zen 4 with AVX-512 BF16 and a Zen 3,
    family/model 25/1, without AVX-512), so every speed record should carry this. Where the file does not
    exist (not Linux): "unknown", and no bfloat16 (no evidence). Used by data/pretrain.py and
    notebooks/speed_modes.py."""
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:
        lines = []
    first: dict[str, str] = {}
    for line in lines:  # the first processor's fields (the others repeat them)
        key, _, value = line.partition(":")
        first.setdefault(key.strip(), value.strip())
    flags = set(first.get("flags", "").split())
    return {"cpu": first.get("model name", "unknown"),
            "family_model": f"{first.get('cpu family', '?')}/{first.get('model', '?')}",
            "cores": os.cpu_count(), "bfloat16": bool(flags & {"avx512_bf16", "amx_bf16"})}


def cpu_has_bfloat16(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> bool:
    """Whether this CPU has bfloat16 matrix instructions (see cpu_description): where mixed_bfloat16 can pay."""
    return cpu_description(cpuinfo)["bfloat16"]


def use_mixed_precision(policy: str = "mixed_bfloat16") -> None:
    """Set Keras's global dtype policy ("mixed_bfloat16", "mixed_float16" or "float32"); keras-bert's
    layers work under it because helpers made them follow their inputs' dtype at import
    (_follow_input_dtypes). Call it before building a model.
    Used in 03.
    """
    if policy not in ("mixed_bfloat16", "mixed_float16", "float32"):
        raise ValueError(f"policy={policy!r}; use 'mixed_bfloat16', 'mixed_float16' or 'float32'")
    _follow_input_dtypes()
    keras.mixed_precision.set_global_policy(policy)


# --- attention as data --------------------------------------------------------------------------
def attention_layers(model: keras.Model) -> list:
    """The Encoder-N-MultiHeadSelfAttention layers of a keras-bert model, in order.
    Used in 04 (and by reinitialize_attention, attention_maps)."""
    layers = [layer for layer in model.layers if layer.name.endswith("-MultiHeadSelfAttention")]
    if not layers:
        raise ValueError(f"model {model.name!r} has no keras-bert attention layers (Encoder-N-MultiHeadSelfAttention)")
    return sorted(layers, key=lambda layer: int(layer.name.split("-")[1]))


def attention_maps(model: keras.Model, token_ids: np.ndarray, segment_ids: np.ndarray,
                   batch_size: int = 32) -> np.ndarray:
    """Attention weights of every layer and head: float32 array [batch, layers, heads, seq, seq].

    keras-bert keeps them inside its layers, so they are recomputed from each attention layer's input
    and weights, exactly as the layer computes them: softmax(Q Kᵀ / √d_head − 10000 · padding), where
    Q = x·Wq + bq and K = x·Wk + bk per head, and padding marks keys with token id 0. Works for any
    keras-bert model (body, classifier, pretraining model); rows sum to 1 and padded keys get ~0.
    Used in 04.
    """
    token_ids, segment_ids = np.asarray(token_ids), np.asarray(segment_ids)
    if token_ids.ndim != 2 or token_ids.shape != segment_ids.shape:
        raise ValueError(f"token_ids {token_ids.shape} and segment_ids {segment_ids.shape} must both be [batch, seq]")
    layers = attention_layers(model)
    probe = keras.Model(model.inputs[:2], [layer.input for layer in layers])
    heads = layers[0].head_num
    maps = []
    for start in range(0, len(token_ids), batch_size):
        ids = token_ids[start:start + batch_size]
        inputs = probe.predict_on_batch([ids, segment_ids[start:start + batch_size]])
        inputs = inputs if isinstance(inputs, list) else [inputs]
        padding = (ids == 0)[:, None, None, :].astype(np.float32)           # [batch, 1, 1, key]
        per_layer = []
        for layer, x in zip(layers, inputs):
            wq, bq, wk, bk = layer.get_weights()[:4]
            b, s, h = x.shape
            q = (x @ wq + bq).reshape(b, s, heads, h // heads).transpose(0, 2, 1, 3)
            k = (x @ wk + bk).reshape(b, s, heads, h // heads).transpose(0, 2, 1, 3)
            # TensorFlow for the batched products: NumPy's matmul over stacked small matrices is slow
            scores = tf.matmul(q, k, transpose_b=True) / np.sqrt(h // heads) - 10000.0 * padding
            per_layer.append(tf.nn.softmax(scores, axis=-1).numpy())
        maps.append(np.stack(per_layer, axis=1))
    return np.concatenate(maps).astype(np.float32)


# --- is a difference real? intervals and a paired test -----------------------------------------
def accuracy_interval(correct, confidence: float = 0.95) -> tuple[float, float, float]:
    """Accuracy and its Wilson score interval: (accuracy, low, high) for a 0/1 array with one entry
    per test example (1 = right). Treats the examples as a sample from the population of reviews,
    which is what a test-set interval is about. scipy computes it (`binomtest(...).proportion_ci`).
    Used in 03, 05.
    """
    correct = _zero_one(correct, "correct")
    k, n = int(correct.sum()), len(correct)
    interval = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return k / n, float(interval.low), float(interval.high)


def seed_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean over seeds and its Student-t interval: (mean, low, high). With 3 seeds the t quantile is
    4.30, so the interval is wide: it describes training noise (initialisation, data order, subset),
    which a test-set interval does not see.
    Used in 03.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"need one value per seed and at least 2 seeds, got shape {values.shape}")
    mean, sem = float(values.mean()), float(scipy.stats.sem(values))
    if sem == 0:
        return mean, mean, mean
    low, high = scipy.stats.t.interval(confidence, len(values) - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def paired_comparison(correct_a, correct_b, resamples: int = 10_000, seed: int = 0) -> dict:
    """Compare two classifiers on the same test examples (0/1 arrays, 1 = right).

    Returns the accuracy difference a - b with a 95% paired bootstrap interval (the same examples are
    resampled for both models, so what they have in common cancels), the discordant counts (a right
    and b wrong, and the reverse) and McNemar's exact p-value: if the models were equally good, each
    discordant example would be a fair coin flip, so the p-value is a two-sided binomial test on them.
    Used in 03, 05.
    """
    a, b = _zero_one(correct_a, "correct_a"), _zero_one(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(f"both models must be scored on the same examples: {a.shape} vs {b.shape}")
    difference = a - b
    only_a, only_b = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
    p_value = scipy.stats.binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    if np.all(difference == difference[0]):  # no variation to resample: the interval is a point
        low = high = float(difference[0])
    else:
        result = scipy.stats.bootstrap((difference,), np.mean, n_resamples=resamples, method="percentile",
                                       rng=seed)
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return {"difference": float(difference.mean()), "ci95": [low, high],
            "only_a_right": only_a, "only_b_right": only_b, "mcnemar_p": float(p_value)}


def _zero_one(values, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1 or len(values) == 0 or not np.isin(values, (0, 1)).all():
        raise ValueError(f"{name} must be a non-empty 1-d array of 0/1 (or booleans), one per example")
    return values.astype(float)


# --- figures ------------------------------------------------------------------------------------
def plot_encoder_diagram(config: dict, seq_len: int):
    """A matplotlib figure of BERT's input embeddings and one post-LayerNorm encoder block, with the
    tensor shapes of `config` at `seq_len` and keras-bert's layer names beside each part. Used in 02."""
    import matplotlib.pyplot as plt

    h, f, heads, n = (config[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads",
                                          "num_hidden_layers"))
    L = f"{seq_len}"
    boxes = [  # (y, text, keras-bert layer names, colour)
        (13.0, f"token ids, segment ids  [batch, {L}]", "Input-Token, Input-Segment", "#eeeeee"),
        (11.6, f"token + segment + position embeddings  [batch, {L}, {h}]\n"
               f"tables {config['vocab_size']:,}×{h}, {config.get('type_vocab_size', 2)}×{h}, "
               f"{min(seq_len, config['max_position_embeddings'])}×{h}",
         "Embedding-Token, -Segment, -Token-Segment (add),\nEmbedding-Position (add)", "#dce9f5"),
        (10.2, f"LayerNorm  [batch, {L}, {h}]", "Embedding-Dropout, Embedding-Norm", "#dce9f5"),
        (8.6, f"multi-head self-attention: {heads} heads of {h // heads}  [batch, {L}, {h}]\n"
              f"per head: softmax(Q·K^T / √{h // heads} − 10000·pad)·V, with Q, K, V = x·W + b;\n"
              f"heads side by side, then ·Wo + bo",
         "Encoder-N-MultiHeadSelfAttention", "#fde4c8"),
        (7.1, f"residual add, LayerNorm  [batch, {L}, {h}]",
         "Encoder-N-MultiHeadSelfAttention-Dropout, -Add, -Norm", "#fde4c8"),
        (5.6, f"feed-forward: {h} → {f} (GELU) → {h}  [batch, {L}, {h}]", "Encoder-N-FeedForward", "#d9f0d3"),
        (4.1, f"residual add, LayerNorm  [batch, {L}, {h}]", "Encoder-N-FeedForward-Dropout, -Add, -Norm",
         "#d9f0d3"),
        (2.5, f"sequence output  [batch, {L}, {h}]: one vector per token", f"Encoder-{n}-FeedForward-Norm",
         "#eeeeee"),
    ]
    fig, ax = plt.subplots(figsize=(11, 7.2))
    for y, text, names, colour in boxes:
        ax.add_patch(plt.Rectangle((0.2, y - 0.55), 5.6, 1.1, facecolor=colour, edgecolor="#555555"))
        ax.text(3.0, y, text, ha="center", va="center", fontsize=8.5, linespacing=1.3)
        ax.text(6.1, y, names, ha="left", va="center", fontsize=8.5, family="monospace", color="#333333")
    for (y0, *_), (y1, *_) in zip(boxes, boxes[1:]):
        ax.annotate("", xy=(3.0, y1 + 0.55), xytext=(3.0, y0 - 0.55), arrowprops={"arrowstyle": "->"})
    for top, bottom in ((10.2, 7.1), (7.1, 4.1)):  # the residual connections skip each sub-layer
        ax.annotate("", xy=(0.2, bottom), xytext=(0.2, top - 0.55),
                    arrowprops={"arrowstyle": "->", "connectionstyle": "arc3,rad=0.5", "color": "#aa3333"})
    ax.text(-0.35, 7.9, "residual", rotation=90, color="#aa3333", fontsize=8, ha="center", va="center")
    ax.add_patch(plt.Rectangle((0.0, 3.35), 10.9, 6.05, fill=False, linestyle="--", edgecolor="#888888"))
    ax.text(10.8, 9.15, f"one encoder block,\nrepeated N = 1 … {n}", ha="right", va="top", fontsize=9,
            color="#555555")
    ax.set(xlim=(-0.7, 11.0), ylim=(1.8, 13.7), title=f"BERT's input and one encoder block ({n} blocks, "
           f"hidden {h}, seq_len {seq_len}), with keras-bert's layer names")
    ax.axis("off")
    return fig
