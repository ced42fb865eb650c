"""Pretrain a mini Chinese BERT on data/ for a fixed wall-clock budget, resumably.

    python data/pretrain.py outputs/try-a --minutes 12 --no-nsp --no-wwm    # a short comparison run
    python data/pretrain.py outputs/run --minutes 95 --init-from data/mini-bert-zh --export outputs/mini-bert-zh-x
    python data/pretrain.py evaluate data/mini-bert-zh    # the floors that need no fine-tuning (issue #11)
    python data/pretrain.py compare outputs/comparisons    # the short runs that chose the recipe (RECIPES)

(data/README.md gives the exact commands, flags included, that made data/mini-bert-zh-v2.)

The recipe (notebook 05 explains each part):
- the corpus is the People's Daily paragraphs of data/news.txt and the *train* split of
  data/reviews.csv (`--review-repeat` times per epoch: the reviews are the domain we care about);
  val and test reviews never enter it;
- text is packed into full rows of `--seq-len` tokens (consecutive sentences; a row may hold several
  short reviews), each row split at a sentence boundary into segments A and B;
- masks are drawn anew every time a row is seen (dynamic masking), over whole words found by jieba
  (whole-word masking, Cui et al. 2019) unless `--no-wwm`;
- next-sentence prediction (B replaced by another row's B half the time) unless `--no-nsp`, in which
  case the NSP head and pooler stay in the model, untrained, so that the checkpoint keeps Google's layout;
- AdamW with a learning rate that warms up over the first `--warmup` share of the *time* budget and
  decays linearly to zero exactly when the budget ends, whatever speed this machine runs at.

The run keeps a resumable checkpoint (model, optimizer, step, seconds) and a log under RUN_DIR; run the
same command again to continue. `touch RUN_DIR/PAUSE` saves and pauses it without using up the budget (remove
the file to go on). Nothing under data/ is written unless you ask with --export.

`evaluate FOLDER` measures a checkpoint against the floors of issue #11 that need no fine-tuning: the
masked-token accuracy on the val+test reviews exactly as notebook 05 (section 9) measures it, and zero-shot
sentiment from the MLM head with a prompt chosen on the validation split and scored on the test split.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# isort: off
import helpers  # noqa: E402  (first: it makes TensorFlow load with Keras 2, which keras-bert needs)
import keras_bert  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402
# isort: on

SENTENCE_END = re.compile(r"(?<=[。！？!?；;…])")
MODEL_CONFIG = {  # Google's bert_config.json keys
    "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024,
    "max_position_embeddings": 512, "hidden_act": "gelu", "type_vocab_size": 2,
    "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
}
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--minutes", type=float, required=True, help="training budget (wall clock)")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--peak-lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=float, default=0.05, help="share of the budget spent warming up")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--review-repeat", type=int, default=3)
    p.add_argument("--no-nsp", action="store_true")
    p.add_argument("--no-wwm", action="store_true")
    p.add_argument("--layers", type=int, default=MODEL_CONFIG["num_hidden_layers"])
    p.add_argument("--hidden", type=int, default=MODEL_CONFIG["hidden_size"])
    p.add_argument("--init-from", type=Path, help="start from this Google-format checkpoint (same vocabulary "
                   "and shape) instead of random weights: continued pretraining")
    p.add_argument("--seed", type=int, default=2019)
    p.add_argument("--threads", type=int, default=0, help="TensorFlow intra-op threads (0: all cores)")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--export", type=Path, help="after training, export a Google-format checkpoint here")
    args = p.parse_args(argv)
    if args.minutes <= 0 or not 0 <= args.warmup < 1 or args.review_repeat < 1 or args.seq_len < 16:
        p.error("need --minutes > 0, 0 <= --warmup < 1, --review-repeat >= 1 and --seq-len >= 16")
    return args


# --- the corpus: documents -> sentences -> words -> tokens -------------------------------------
def pretraining_texts() -> dict[str, list[str]]:
    """The raw pretraining text: the train-split reviews and the news paragraphs of data/news.txt.
    No validation or test review, and no paragraph of data/news_heldout.txt (tests/test_pretrain.py)."""
    reviews = helpers.load_reviews()
    return {"reviews": reviews.loc[reviews["split"] == "train", "text"].tolist(),
            "news": (helpers.DATA_DIR / "news.txt").read_text(encoding="utf-8").splitlines()}


def load_corpus(tokenizer: keras_bert.Tokenizer, wwm: bool) -> dict[str, list]:
    """Train-split reviews and news paragraphs as documents: lists of sentences, each a list of
    words, each a list of WordPiece tokens (one token per word without whole-word masking)."""
    import jieba

    jieba.setLogLevel(60)  # jieba logs its dictionary loading to stderr
    texts = pretraining_texts()
    train, news = texts["reviews"], texts["news"]

    def document(text: str) -> list[list[list[str]]]:
        out = []
        for sentence in SENTENCE_END.split(text):
            if not sentence.strip():
                continue
            if wwm:
                words = [tokenizer.tokenize(w)[1:-1] for w in jieba.lcut(sentence)]
            else:
                words = [[t] for t in tokenizer.tokenize(sentence)[1:-1]]
            words = [w for w in words if w]
            if words:
                out.append(words)
        return out

    return {"reviews": [document(t) for t in train], "news": [document(p) for p in news]}


# --- rows: packed, split into A and B, masked anew each time ----------------------------------------
def epoch_rows(corpus: dict, epoch: int, args) -> list[tuple[list, list]]:
    """One epoch's rows as (A, B), each a list of words: documents in a seeded order (reviews
    `review_repeat` times), consecutive sentences packed up to seq_len - 3 tokens."""
    rng = np.random.default_rng([args.seed, epoch])
    docs = corpus["news"] + corpus["reviews"] * args.review_repeat
    budget = args.seq_len - 3
    rows, row, length = [], [], 0
    for d in rng.permutation(len(docs)):
        for sentence in docs[d]:
            size = sum(map(len, sentence))
            if size > budget:  # an over-long sentence is cut into pieces of whole words
                piece, piece_len = [], 0
                for word in sentence:
                    if piece_len + len(word) > budget and piece:
                        rows.append(row) if row else None
                        rows.append([piece])
                        row, length, piece, piece_len = [], 0, [], 0
                    piece.append(word[:budget])
                    piece_len += len(word[:budget])
                sentence, size = piece, piece_len
                if not sentence:
                    continue
            if length + size > budget:
                rows.append(row)
                row, length = [], 0
            row.append(sentence)
            length += size
    if row:
        rows.append(row)
    pairs = []
    for sentences in rows:
        words = [w for s in sentences for w in s]
        if len(words) < 2:
            continue
        if len(sentences) > 1:  # split at a sentence boundary
            cut = int(rng.integers(1, len(sentences)))
            a = [w for s in sentences[:cut] for w in s]
            b = [w for s in sentences[cut:] for w in s]
        else:
            cut = int(rng.integers(1, len(words)))
            a, b = words[:cut], words[cut:]
        pairs.append((a, b))
    return [pairs[i] for i in rng.permutation(len(pairs))]


def make_batch(pairs, vocab, args, rng, nsp: bool):
    """Inputs [token ids, segment ids, mask flags] and outputs [MLM targets, NSP labels] for a list of
    (A, B) word lists. NSP label 1 means B is not A's continuation (keras-bert's convention)."""
    n, L = len(pairs), args.seq_len
    cls, sep, mask = vocab["[CLS]"], vocab["[SEP]"], vocab["[MASK]"]
    tokens = np.zeros((n, L), np.int32)
    segments = np.ones((n, L), np.int32)  # keras-bert's gen_batch_inputs gives padding segment 1 too
    masked = np.zeros((n, L), np.int32)
    nsp_labels = np.zeros((n, 1), np.float32)
    targets = np.zeros((n, L, 1), np.int32)  # every position's true token; the loss reads masked ones only
    normal = np.array([i for t, i in vocab.items() if t not in SPECIAL])
    for r, (a, b) in enumerate(pairs):
        if nsp and rng.random() < 0.5:
            other = int(rng.integers(n))
            if other != r:
                b, nsp_labels[r, 0] = pairs[other][1], 1.0
        ids, word_of = [cls], [-1]
        for w, word in enumerate(a):
            ids += [vocab.get(t, vocab["[UNK]"]) for t in word]
            word_of += [w] * len(word)
        ids.append(sep)
        word_of.append(-1)
        segments[r, :len(ids)] = 0
        for w, word in enumerate(b, start=len(a)):
            ids += [vocab.get(t, vocab["[UNK]"]) for t in word]
            word_of += [w] * len(word)
        ids, word_of = ids[:L - 1] + [sep], word_of[:L - 1] + [-1]
        tokens[r, :len(ids)] = targets[r, :len(ids), 0] = ids
        # whole words are masked together until about 15% of the row's real tokens are chosen
        words = np.array(word_of)
        real = int((words >= 0).sum())
        chosen = np.zeros(len(ids), bool)
        for w in rng.permutation(np.unique(words[words >= 0])):
            if chosen.sum() >= max(1, round(0.15 * real)):
                break
            chosen |= words == w
        where = np.flatnonzero(chosen)
        masked[r, where] = 1
        u = rng.random(len(where))
        tokens[r, where[u < 0.8]] = mask
        random_ones = where[(u >= 0.8) & (u < 0.9)]
        tokens[r, random_ones] = normal[rng.integers(len(normal), size=len(random_ones))]
    return [tokens, segments, masked], [targets, nsp_labels]


def batch_for_step(step, corpus, vocab, args, cache):
    """The batch of a given step: rows in a fixed order per epoch, masks drawn from (seed, step).
    `cache` keeps every epoch's length and the current epoch's rows, so that each epoch's rows are built
    once (building them takes seconds: rebuilding earlier epochs at every step made steps 5 times slower)."""
    size = args.batch_size
    epoch, offset = 0, step * size
    lengths = cache.setdefault("lengths", {})
    while True:
        if epoch not in lengths:
            cache["rows"] = epoch, epoch_rows(corpus, epoch, args)
            lengths[epoch] = len(cache["rows"][1]) // size * size
        if offset < lengths[epoch]:
            break
        offset -= lengths[epoch]
        epoch += 1
    if cache["rows"][0] != epoch:
        cache["rows"] = epoch, epoch_rows(corpus, epoch, args)
    pairs = cache["rows"][1][offset:offset + size]
    rng = np.random.default_rng([args.seed, 7, step])
    inputs, outputs = make_batch(pairs, vocab, args, rng, nsp=not args.no_nsp)
    return inputs, outputs, epoch


# --- measuring: the held-out masked-token accuracy of notebook 05 -----------------------------------
def heldout_pairs(texts: list[str], tokenizer, seq_len: int, seed: int) -> list[tuple[list, list]]:
    """Notebook 05's held-out measure: each review's sentences packed into pairs of <= seq_len - 3
    tokens (no packing across reviews), masked by keras-bert's gen_batch_inputs."""
    rng = np.random.default_rng(seed)
    pairs, budget = [], seq_len - 3
    for text in texts:
        chunk, length = [], 0
        sentences = [tokenizer.tokenize(s)[1:-1] for s in SENTENCE_END.split(text) if s.strip()]
        for sentence in sentences:
            for start in range(0, len(sentence), budget):
                piece = sentence[start:start + budget]
                if length + len(piece) > budget:
                    pairs += split_chunk(chunk, rng)
                    chunk, length = [], 0
                chunk.append(piece)
                length += len(piece)
        pairs += split_chunk(chunk, rng)
    return pairs


def split_chunk(chunk, rng):
    if sum(map(len, chunk)) < 2:
        return []
    if len(chunk) == 1:
        cut = rng.integers(1, len(chunk[0]))
        return [(chunk[0][:cut], chunk[0][cut:])]
    cut = rng.integers(1, len(chunk))
    return [([t for s in chunk[:cut] for t in s], [t for s in chunk[cut:] for t in s])]


def masked_accuracy(model, pairs, vocab, seq_len: int, seed: int) -> dict:
    """MLM accuracy on keras-bert-masked held-out pairs, and NSP accuracy."""
    np.random.seed(seed)
    x, (y_mlm, y_nsp) = keras_bert.gen_batch_inputs(pairs, {**vocab, "": 0}, list(vocab), seq_len=seq_len)
    correct = total = nsp_correct = 0
    for s in range(0, len(pairs), 128):
        mlm, nsp = model.predict_on_batch([a[s:s + 128] for a in x])
        sel = x[2][s:s + 128] == 1
        correct += int((mlm.argmax(-1)[sel] == y_mlm[s:s + 128, :, 0][sel]).sum())
        total += int(sel.sum())
        nsp_correct += int((nsp.argmax(-1) == y_nsp[s:s + 128, 0]).sum())
    return {"mlm_accuracy": correct / total, "nsp_accuracy": nsp_correct / len(pairs), "masked_tokens": total}


# --- training --------------------------------------------------------------------------------------
def build_model(args, vocab_size: int) -> tuple[keras.Model, dict]:
    config = {**MODEL_CONFIG, "hidden_size": args.hidden, "num_hidden_layers": args.layers,
              "num_attention_heads": max(1, args.hidden // 64), "intermediate_size": 4 * args.hidden,
              "vocab_size": vocab_size}
    model = keras_bert.get_model(
        token_num=vocab_size, pos_num=config["max_position_embeddings"], seq_len=None,
        embed_dim=config["hidden_size"], transformer_num=config["num_hidden_layers"],
        head_num=config["num_attention_heads"], feed_forward_dim=config["intermediate_size"],
        dropout_rate=args.dropout, training=True)
    helpers.reinitialize_attention(model, seed=args.seed)
    if args.init_from:
        start = helpers.load_bert(seq_len=None, training=True, folder=args.init_from)
        for layer in start.layers:
            if layer.get_weights():
                model.get_layer(layer.name).set_weights(layer.get_weights())
        del start
    return model, config


# Zero labels: the MLM head fills a blank after the review (pattern-exploiting classification, Schick &
# Schutze 2021). Each prompt pairs with word lists for the two labels ("verbalizers"); the prompt, the lists
# and the threshold are chosen on validation reviews, and the test split is scored once with that choice.
PROMPTS = ("总之，很[MASK]。", "总之，[MASK]。", "感觉很[MASK]。", "总的来说很[MASK]。", "真的很[MASK]！")
VERBALIZERS = {"好 / 差": (("好",), ("差",)),
               "好棒赞值 / 差烂糟坑": (("好", "棒", "赞", "值"), ("差", "烂", "糟", "坑"))}
ENSEMBLE = "all of them"  # the trial that averages every prompt and verbalizer (see zero_shot)


def blank_reader(model):
    """A function (token ids [rows, seq_len], one blank position per row) -> the MLM head's probabilities over
    the vocabulary at each row's blank. It runs the encoder and the head's transform (`MLM-Norm`), then the
    output layer (the token embeddings, transposed, plus a bias) at the blanks only: the full head would
    compute seq_len x vocabulary probabilities per row, over 100 times the work here."""
    hidden = keras.Model(model.inputs, model.get_layer("MLM-Norm").output)
    table = model.get_layer("Embedding-Token").get_weights()[0]
    bias = model.get_layer("MLM-Sim").get_weights()[0]

    def read(ids: np.ndarray, where: np.ndarray) -> np.ndarray:
        h = hidden.predict_on_batch([ids, np.zeros_like(ids), np.zeros_like(ids)])[np.arange(len(ids)), where]
        logits = h @ table.T + bias
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    return read


def blank_probabilities(read, texts, tokenizer, vocab, prompt: str, seq_len: int) -> np.ndarray:
    """The MLM head's probabilities over the vocabulary at the blank of `review + prompt`, one row per text
    (`read` comes from blank_reader); a long review is cut so that the prompt always fits."""
    before, after = (tokenizer.tokenize(part)[1:-1] for part in prompt.split("[MASK]"))
    ids, where = np.zeros((len(texts), seq_len), np.int32), np.zeros(len(texts), int)
    for r, text in enumerate(texts):
        body = tokenizer.tokenize(text)[1:-1][: seq_len - len(before) - len(after) - 3]
        row = ["[CLS]"] + body + before + ["[MASK]"] + after + ["[SEP]"]
        ids[r, :len(row)] = [vocab.get(t, vocab["[UNK]"]) for t in row]
        where[r] = 1 + len(body) + len(before)
    return np.concatenate([read(ids[s:s + 128], where[s:s + 128]) for s in range(0, len(texts), 128)])


def zero_shot(read, tokenizer, vocab, val: tuple, test: tuple, seq_len: int = 128) -> dict:
    """Zero-shot sentiment: for every prompt and verbalizer, the score log P(positive words) - log P(negative
    words) at the blank; and their ensemble (PET's, Schick & Schutze 2021: several patterns vote), the mean of
    all the combinations' scores, each standardised by its mean and standard deviation over the validation
    reviews (no labels used) so that no prompt outweighs another. The candidate and threshold with the best
    validation accuracy are applied to the test split. `read` comes from blank_reader; `val` and `test` are
    (texts, labels). Returns every candidate's validation accuracy and the chosen one's test accuracy with its
    Wilson 95% interval."""
    (val_texts, val_labels), (test_texts, test_labels) = val, test
    val_labels, test_labels = np.asarray(val_labels), np.asarray(test_labels)

    def score(p, verbalizer):
        positive, negative = VERBALIZERS[verbalizer]
        return np.log(p[:, [vocab[w] for w in positive]].sum(1)) - np.log(p[:, [vocab[w] for w in negative]].sum(1))

    def best_threshold(values):
        thresholds = np.quantile(values, np.linspace(0.02, 0.98, 49))
        accuracy = [((values > t) == val_labels).mean() for t in thresholds]
        return float(max(accuracy)), float(thresholds[int(np.argmax(accuracy))])

    trials, val_scores = [], {}
    for prompt in PROMPTS:
        probabilities = blank_probabilities(read, val_texts, tokenizer, vocab, prompt, seq_len)
        for name in VERBALIZERS:
            val_scores[prompt, name] = values = score(probabilities, name)
            accuracy, threshold = best_threshold(values)
            trials.append({"prompt": prompt, "verbalizer": name, "val_accuracy": accuracy, "threshold": threshold})
    standardise = {key: (float(v.mean()), float(v.std())) for key, v in val_scores.items()}
    ensemble_val = np.mean([(v - standardise[key][0]) / standardise[key][1] for key, v in val_scores.items()], 0)
    accuracy, threshold = best_threshold(ensemble_val)
    trials.append({"prompt": ENSEMBLE, "verbalizer": ENSEMBLE, "val_accuracy": accuracy, "threshold": threshold})
    chosen = max(trials, key=lambda trial: trial["val_accuracy"])  # the first of equals, in this order
    if chosen["prompt"] == ENSEMBLE:
        test_scores = []
        for prompt in PROMPTS:
            probabilities = blank_probabilities(read, test_texts, tokenizer, vocab, prompt, seq_len)
            test_scores += [(score(probabilities, name) - standardise[prompt, name][0]) / standardise[prompt, name][1]
                            for name in VERBALIZERS]
        values = np.mean(test_scores, 0)
    else:
        values = score(blank_probabilities(read, test_texts, tokenizer, vocab, chosen["prompt"], seq_len),
                       chosen["verbalizer"])
    correct = (values > chosen["threshold"]) == test_labels
    accuracy, low, high = helpers.accuracy_interval(correct)
    return {"trials": trials, "chosen": chosen, "test_accuracy": accuracy, "test_ci95": [low, high]}


def evaluate(folder: Path, seq_len: int = 128, seed: int = 2019) -> dict:
    """The checkpoint's floors that need no fine-tuning (issue #11): masked-token accuracy on the val+test
    reviews exactly as notebook 05 section 9 measures it (same pairs, same masks), and zero-shot accuracy."""
    vocab = helpers.load_vocab(folder)
    tokenizer = keras_bert.Tokenizer(vocab)
    model = helpers.load_bert(seq_len=seq_len, training=True, folder=folder)
    reviews = helpers.load_reviews()
    part = {s: reviews[reviews["split"] == s] for s in ("val", "test")}
    texts = part["val"]["text"].tolist() + part["test"]["text"].tolist()
    held_out = masked_accuracy(model, heldout_pairs(texts, tokenizer, seq_len, seed + 10), vocab, seq_len, seed + 10)
    labelled = {s: (f["text"].tolist(), f["label"].tolist()) for s, f in part.items()}
    return {"folder": folder.name, "val_test_reviews": held_out,
            "zero_shot": zero_shot(blank_reader(model), tokenizer, vocab, labelled["val"], labelled["test"], seq_len)}


NO_AUTOTUNE = tf.data.Options()
NO_AUTOTUNE.autotune.enabled = False  # no tf.data tuning thread, whose teardown rounds step times up (notebook 05)


def train_step(model, inputs, outputs) -> dict:
    """One optimizer step on one batch: what train_on_batch computes, through Keras's compiled train
    function fed by a one-batch dataset without autotuning (notebook 05, section 6, explains why)."""
    model.reset_metrics()
    batch = tf.data.Dataset.from_tensors((tuple(inputs), tuple(outputs))).with_options(NO_AUTOTUNE)
    return {name: float(value) for name, value in model.make_train_function()(iter(batch)).items()}


def learning_rate(seconds: float, args) -> float:
    """Linear warm-up over the first `warmup` share of the budget, then linear decay to 0 at its end."""
    budget = args.minutes * 60
    warm = args.warmup * budget
    if seconds < warm:
        return args.peak_lr * seconds / warm
    return args.peak_lr * max(0.0, (budget - seconds) / (budget - warm))


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    helpers.seed_everything(args.seed)
    run_dir = args.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                if k not in ("run_dir", "export", "threads", "minutes")}
    settings_path = run_dir / "settings.json"
    if settings_path.exists() and json.loads(settings_path.read_text()) != settings:
        raise SystemExit(f"{run_dir} holds a run with other settings ({settings_path}); "
                         "choose another RUN_DIR or the same settings")
    settings_path.write_text(json.dumps(settings, indent=2) + "\n")

    vocab = helpers.load_vocab(helpers.EMBEDDED_BERT_DIR)
    tokenizer = keras_bert.Tokenizer(vocab)
    t0 = time.perf_counter()
    corpus = load_corpus(tokenizer, wwm=not args.no_wwm)
    reviews = helpers.load_reviews()
    val = reviews.loc[reviews["split"] == "val", "text"].tolist()
    monitor = heldout_pairs(val, tokenizer, args.seq_len, args.seed + 10)
    print(f"corpus ready in {time.perf_counter() - t0:.0f} s: {len(corpus['news']):,} news paragraphs, "
          f"{len(corpus['reviews']):,} train reviews x {args.review_repeat}", flush=True)

    model, config = build_model(args, len(vocab))
    optimizer = keras.optimizers.AdamW(learning_rate=0.0, weight_decay=args.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    model.compile(optimizer=optimizer, loss=keras.losses.sparse_categorical_crossentropy,
                  loss_weights={"MLM": 1.0, "NSP": 0.0 if args.no_nsp else 1.0},
                  metrics={"MLM": "sparse_categorical_accuracy", "NSP": "sparse_categorical_accuracy"})
    step_var = tf.Variable(0, dtype=tf.int64)
    seconds_var = tf.Variable(0.0, dtype=tf.float64)
    saver = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var, seconds=seconds_var),
        run_dir / "resume", max_to_keep=2)
    log_path = run_dir / "log.json"
    keys = ["step", "seconds", "epoch", "learning_rate", "loss", "mlm_loss", "mlm_accuracy", "nsp_accuracy",
            "val_mlm_accuracy"]
    log = {k: [] for k in keys}
    if saver.latest_checkpoint:
        saver.checkpoint.restore(saver.latest_checkpoint).assert_existing_objects_matched()
        saved = json.loads(log_path.read_text())
        keep = sum(s <= int(step_var) for s in saved["step"])
        log = {k: saved[k][:keep] for k in keys}
        print(f"resumed at step {int(step_var)}, {float(seconds_var) / 60:.1f} min", flush=True)

    budget, cache, running = args.minutes * 60, {}, []
    monitor_sample = monitor[:: max(1, len(monitor) // 512)][:512]
    step, seconds = int(step_var), float(seconds_var)

    def save():
        step_var.assign(step)
        seconds_var.assign(seconds)
        saver.save(checkpoint_number=step)
        log_path.write_text(json.dumps(log))

    last = time.perf_counter()
    while seconds < budget:
        if (run_dir / "PAUSE").exists():  # `touch RUN_DIR/PAUSE` lends the CPU to something else; the budget waits
            save()  # so that a paused run can also be stopped without losing a step
            print(f"paused at step {step} (saved)", flush=True)
            while (run_dir / "PAUSE").exists():
                time.sleep(5)
            print(f"resumed at step {step}", flush=True)
            last = time.perf_counter()
        inputs, outputs, epoch = batch_for_step(step, corpus, vocab, args, cache)
        optimizer.learning_rate.assign(learning_rate(seconds, args))
        running.append(train_step(model, inputs, outputs))
        now = time.perf_counter()
        seconds += now - last
        last = now
        step += 1
        done = seconds >= budget
        if step % args.log_every == 0 or done:
            mean = {k: float(np.mean([r[k] for r in running])) for k in running[0]}
            running = []
            held = masked_accuracy(model, monitor_sample, vocab, args.seq_len, args.seed + 3)
            for k, v in (("step", step), ("seconds", seconds), ("epoch", epoch),
                         ("learning_rate", learning_rate(seconds, args)), ("loss", mean["loss"]),
                         ("mlm_loss", mean["MLM_loss"]), ("mlm_accuracy", mean["MLM_sparse_categorical_accuracy"]),
                         ("nsp_accuracy", mean["NSP_sparse_categorical_accuracy"]),
                         ("val_mlm_accuracy", held["mlm_accuracy"])):
                log[k].append(v)
            print(f"step {step:6d}  {seconds / 60:6.1f} min  epoch {epoch}  MLM loss {mean['MLM_loss']:.3f}  "
                  f"acc {log['mlm_accuracy'][-1]:.3f}  NSP {log['nsp_accuracy'][-1]:.3f}  "
                  f"val MLM acc {held['mlm_accuracy']:.3f}", flush=True)
            last = time.perf_counter()  # evaluation time does not count against the training budget
        if step % args.save_every == 0 or done:
            save()
            last = time.perf_counter()

    final = masked_accuracy(model, monitor, vocab, args.seq_len, args.seed + 3)
    result = {"settings": settings, "config": config, "parameters": model.count_params(), "steps": step,
              "training_seconds": seconds, "val_reviews": final}
    (run_dir / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print("val reviews:", final, flush=True)
    if args.export:
        helpers.export_checkpoint(model, config, args.export, vocab=list(vocab))
        (args.export / "pretraining_run.json").write_text(json.dumps({**result, "log": log}, indent=2) + "\n")
        print(f"exported to {args.export}", flush=True)
    return result


# The short comparison runs that chose the recipe of mini-bert-zh-v2 (issue #11): each continues v1 for the same
# wall-clock budget with one recipe, and is scored by its end-of-run masked-token accuracy on all val reviews.
RECIPES = {
    "A": ("whole-word masks, dropout 0.1, peak 5e-4", ["--dropout", "0.1", "--peak-lr", "5e-4"]),
    "B": ("whole-word masks, dropout 0.1, peak 2e-4", ["--dropout", "0.1", "--peak-lr", "2e-4"]),
    "C": ("whole-word masks, no dropout, peak 5e-4", ["--dropout", "0.0", "--peak-lr", "5e-4"]),
    "D": ("token masks, dropout 0.1, peak 5e-4", ["--no-wwm", "--dropout", "0.1", "--peak-lr", "5e-4"]),
    "E": ("token masks, no dropout, peak 2e-4", ["--no-wwm", "--dropout", "0.0", "--peak-lr", "2e-4"]),
    "F": ("E without next-sentence prediction", ["--no-wwm", "--dropout", "0.0", "--peak-lr", "2e-4", "--no-nsp"]),
}


def compare_main(argv=None) -> dict:
    """Run the recipes of RECIPES one after another (each resumable: the same command continues an unfinished
    one), then write OUT_DIR/comparisons.json: each recipe's flags, steps, training minutes, end-of-run scores
    and log, and the machine. Run it on an otherwise idle machine: the budgets are wall-clock minutes."""
    p = argparse.ArgumentParser(prog="pretrain.py compare", description=compare_main.__doc__)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--minutes", type=float, default=12.0, help="each run's budget")
    p.add_argument("--init-from", type=Path, default=Path("data/mini-bert-zh"))
    p.add_argument("--recipes", default="".join(RECIPES), help="which recipes, by letter (default: all)")
    args = p.parse_args(argv)
    unknown = sorted(set(args.recipes) - set(RECIPES))
    if unknown:
        p.error(f"no recipe {', '.join(unknown)}; the recipes are {', '.join(RECIPES)}")
    runs = {}
    for name in args.recipes:
        run_dir = args.out_dir / name
        if not (run_dir / "result.json").exists():
            command = [sys.executable, str(Path(__file__).resolve()), str(run_dir), "--minutes", str(args.minutes),
                       "--init-from", str(args.init_from), "--log-every", "100", *RECIPES[name][1]]
            print(f"recipe {name} ({RECIPES[name][0]}): data/pretrain.py", " ".join(command[2:]), flush=True)
            subprocess.run(command, check=True)
        result = json.loads((run_dir / "result.json").read_text())
        runs[name] = {"recipe": RECIPES[name][0], "flags": RECIPES[name][1], **result,
                      "log": json.loads((run_dir / "log.json").read_text())}
        print(f"recipe {name}: {result['steps']:,} steps, masked-token accuracy on val reviews "
              f"{result['val_reviews']['mlm_accuracy']:.3f}", flush=True)
    record = {"minutes": args.minutes, "init_from": str(args.init_from), "machine": helpers.cpu_description(),
              "runs": runs}
    (args.out_dir / "comparisons.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def evaluate_main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="pretrain.py evaluate", description=evaluate.__doc__)
    p.add_argument("folder", type=Path, help="a Google-format checkpoint folder (with the pretraining heads)")
    p.add_argument("--output", type=Path, help="also write the result here as JSON (not under data/)")
    args = p.parse_args(argv)
    if args.output and args.output.exists():
        p.error(f"--output {args.output} exists; remove it or name another file (a result is never overwritten)")
    if args.output and args.output.resolve().is_relative_to(ROOT) and not args.output.resolve().is_relative_to(
            helpers.OUTPUTS_DIR.resolve()):
        p.error(f"--output {args.output} is inside the repository but not under outputs/: runs never write "
                "tracked files; name a file under outputs/ or outside the repository")
    helpers.check_checkpoint(args.folder, training=True)  # a clear error for a folder that is not one
    result = evaluate(args.folder)
    held, shot = result["val_test_reviews"], result["zero_shot"]
    print(f"{args.folder.name}: masked-token accuracy on val+test reviews {held['mlm_accuracy']:.3f} "
          f"({held['masked_tokens']:,} masked tokens)")
    for trial in shot["trials"]:
        print(f"  zero-shot {trial['prompt']}  {trial['verbalizer']:12s}  val accuracy {trial['val_accuracy']:.3f}")
    chosen, (low, high) = shot["chosen"], shot["test_ci95"]
    print(f"zero-shot, chosen on val: {chosen['prompt']} {chosen['verbalizer']}: test accuracy "
          f"{shot['test_accuracy']:.3f} (95% interval {low:.3f} to {high:.3f})")
    if args.output:
        args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["evaluate"]:
        evaluate_main(sys.argv[2:])
    elif sys.argv[1:2] == ["compare"]:
        compare_main(sys.argv[2:])
    else:
        main()
