"""data/pretrain.py: what enters pretraining, packing, masking, next-sentence labels, the schedule, zero-shot."""

import json
import zlib
from pathlib import Path

import numpy as np
import pretrain
import pytest
from tiny import inputs, tiny_model

import helpers


def normalised(text: str) -> str:
    return "".join(text.split())


def test_no_validation_or_test_review_enters_pretraining_even_modulo_whitespace():
    texts = pretrain.pretraining_texts()
    reviews = helpers.load_reviews()
    held_out = {normalised(t) for t in reviews.loc[reviews["split"] != "train", "text"]}
    assert len(texts["reviews"]) == (reviews["split"] == "train").sum()
    assert not held_out & {normalised(t) for t in texts["reviews"]}
    assert not held_out & {normalised(p) for p in texts["news"]}
    heldout_news = (helpers.DATA_DIR / "news_heldout.txt").read_text(encoding="utf-8").splitlines()
    assert not {normalised(p) for p in heldout_news} & {normalised(p) for p in texts["news"]}


@pytest.fixture(scope="module")
def setup():
    args = pretrain.parse_args(["unused", "--minutes", "1", "--seq-len", "32", "--batch-size", "8"])
    vocab = helpers.load_vocab(helpers.EMBEDDED_BERT_DIR)
    tokenizer = helpers.load_tokenizer(helpers.EMBEDDED_BERT_DIR)
    words = [[tokenizer.tokenize(w)[1:-1] for w in ("这家", "酒店", "的", "服务", "很", "好", "。")]]
    corpus = {"reviews": [words, [[["差"], ["评"], ["！"]]]] * 4,
              "news": [[[[c] for c in "今天北京下雪了。"], [[c] for c in "气温很低。"]]]}
    return args, vocab, corpus


def test_rows_are_packed_within_the_length_and_split_into_two_non_empty_segments(setup):
    args, _, corpus = setup
    rows = pretrain.epoch_rows(corpus, 0, args)
    assert rows and all(a and b for a, b in rows)
    assert all(sum(map(len, a + b)) <= args.seq_len - 3 for a, b in rows)
    packed = sum(len(a) + len(b) for a, b in rows)
    words = sum(len(s) for d in corpus["news"] + corpus["reviews"] * args.review_repeat for s in d)
    assert packed == words  # nothing dropped: every word of an epoch is in some row
    assert len(rows) < len(corpus["news"]) + len(corpus["reviews"]) * args.review_repeat  # short reviews share rows


def test_masks_take_whole_words_about_15_percent_and_never_special_tokens(setup):
    args, vocab, corpus = setup
    pairs = pretrain.epoch_rows(corpus, 0, args)[: args.batch_size]
    (tokens, segments, masked), (targets, nsp) = pretrain.make_batch(pairs, vocab, args, np.random.default_rng(0),
                                                                   nsp=False)
    special = np.isin(targets[..., 0], [vocab[t] for t in pretrain.SPECIAL])
    assert not (masked.astype(bool) & special).any()
    real = (~special).sum(axis=1)
    assert (masked.sum(axis=1) >= np.round(0.15 * real)).all() and (masked.sum(axis=1) <= 0.15 * real + 2).all()
    assert (tokens[masked == 0] == targets[..., 0][masked == 0]).all()  # only masked positions change
    assert (nsp == 0).all()
    # "酒店" is two tokens of one word: they are masked together or not at all
    hotel = [vocab["酒"], vocab["店"]]
    for row in range(len(pairs)):
        ids = targets[row, :, 0].tolist()
        for p in range(len(ids) - 1):
            if ids[p:p + 2] == hotel:
                assert masked[row, p] == masked[row, p + 1]


def test_masks_change_with_the_step_but_are_repeatable(setup):
    args, vocab, corpus = setup
    cache = {}
    first = pretrain.batch_for_step(0, corpus, vocab, args, cache)[0][2]
    again = pretrain.batch_for_step(0, corpus, vocab, args, cache)[0][2]
    later = pretrain.batch_for_step(1 + len(pretrain.epoch_rows(corpus, 0, args)) // args.batch_size,
                                    corpus, vocab, args, cache)[0][2]
    assert (first == again).all() and first.shape == later.shape and not (first == later).all()


def test_each_epoch_is_built_once_and_a_shared_cache_gives_the_same_batches_as_a_fresh_one(setup, monkeypatch):
    args, vocab, corpus = setup
    steps = 4 * len(pretrain.epoch_rows(corpus, 0, args)) // args.batch_size  # epochs' lengths vary a little
    fresh = [pretrain.batch_for_step(s, corpus, vocab, args, {}) for s in range(steps)]  # as after a resume
    built = []
    epoch_rows = pretrain.epoch_rows
    monkeypatch.setattr(pretrain, "epoch_rows", lambda c, e, a: built.append(e) or epoch_rows(c, e, a))
    cache = {}
    for step, (ins, outs, epoch) in enumerate(fresh):
        again = pretrain.batch_for_step(step, corpus, vocab, args, cache)
        assert again[2] == epoch
        assert all((x == y).all() for x, y in zip(ins + outs, again[0] + again[1])), f"step {step}"
    assert fresh[-1][2] >= 3 and built == list(range(fresh[-1][2] + 1))  # the slow part, once per epoch


def test_next_sentence_labels_mark_exactly_the_swapped_second_segments(setup):
    args, vocab, _ = setup
    chars = [t for t in vocab if len(t) == 1 and "\u4e00" <= t <= "\u9fff"]
    # every row has a different B, so a swapped B is never the row's own
    pairs = [([[chars[2 * i]]], [[chars[2 * i + 1]], [chars[2 * i + 20]]]) for i in range(args.batch_size)]
    (_, segments, _), (targets, nsp) = pretrain.make_batch(pairs, vocab, args, np.random.default_rng(3), nsp=True)
    assert 0 < nsp.sum() < len(pairs)
    for row, (_, b) in enumerate(pairs):
        second = targets[row, :, 0][(segments[row] == 1) & (targets[row, :, 0] != 0)].tolist()[:-1]  # without [SEP]
        own = [vocab.get(t, vocab["[UNK]"]) for w in b for t in w]
        assert (second == own) == (nsp[row, 0] == 0), f"row {row}: label {nsp[row, 0]}"


def test_the_learning_rate_warms_up_and_reaches_zero_exactly_at_the_budget():
    args = pretrain.parse_args(["unused", "--minutes", "10", "--warmup", "0.1", "--peak-lr", "1e-3"])
    assert pretrain.learning_rate(0, args) == 0
    assert pretrain.learning_rate(60, args) == pytest.approx(1e-3)
    assert pretrain.learning_rate(330, args) == pytest.approx(5e-4)
    assert pretrain.learning_rate(600, args) == 0 and pretrain.learning_rate(700, args) == 0


# --- zero labels: the MLM head fills a blank after the review ------------------------------------------
class BlankReader:
    """A stand-in for blank_reader(model): at the blank it prefers 好 when the row holds 好 and 差 otherwise.
    It records what it was given, so a test can check the rows and the blank positions."""

    def __init__(self, vocab):
        self.vocab, self.rows, self.where = vocab, [], []

    def __call__(self, ids, where):
        self.rows += list(ids)
        self.where += list(where)
        p = np.full((len(ids), len(self.vocab)), 0.001)
        good = (ids == self.vocab["好"]).any(axis=1)
        p[:, self.vocab["好"]], p[:, self.vocab["差"]] = np.where(good, 0.6, 0.2), np.where(good, 0.2, 0.6)
        return p


def test_the_blank_reader_equals_the_full_mlm_head_at_the_blank():
    model = tiny_model(training=True)
    tokens = inputs(n=3, seq_len=12)[0]
    where = np.array([3, 5, 8])
    full = model.predict_on_batch([tokens, np.zeros_like(tokens), np.ones_like(tokens)])[0]
    np.testing.assert_allclose(pretrain.blank_reader(model)(tokens, where), full[np.arange(3), where], atol=1e-6)


def test_zero_shot_reads_the_blank_chooses_on_validation_and_scores_the_test_split_once():
    vocab = helpers.load_vocab(helpers.EMBEDDED_BERT_DIR)
    tokenizer = helpers.load_tokenizer(helpers.EMBEDDED_BERT_DIR)
    val = (["房间很好", "服务差", "早餐好吃", "太差"], [1, 0, 1, 0])
    test = (["环境好", "质量差", "好评", "差评", "很好用"], [1, 0, 1, 0, 1])
    result = pretrain.zero_shot(BlankReader(vocab), tokenizer, vocab, val, test, seq_len=32)
    assert len(result["trials"]) == len(pretrain.PROMPTS) * len(pretrain.VERBALIZERS) + 1  # + the ensemble
    assert result["chosen"] in result["trials"] and result["chosen"]["val_accuracy"] == 1.0
    assert result["chosen"]["prompt"] == pretrain.PROMPTS[0]  # the first of equals: a single prompt
    assert result["test_accuracy"] == 1.0
    low, high = result["test_ci95"]
    assert 0.5 < low < 1.0 == high  # Wilson's interval: five reviews cannot show certainty


def test_a_long_review_is_cut_so_that_the_prompt_and_its_blank_always_fit():
    vocab = helpers.load_vocab(helpers.EMBEDDED_BERT_DIR)
    tokenizer = helpers.load_tokenizer(helpers.EMBEDDED_BERT_DIR)
    reader = BlankReader(vocab)
    p = pretrain.blank_probabilities(reader, ["好" * 500, "差"], tokenizer, vocab, "总之，很[MASK]。", seq_len=32)
    assert p.shape == (2, len(vocab))
    long_row, short_row = (row.tolist() for row in reader.rows)
    prompt = [vocab[t] for t in ("总", "之", "，", "很", "[MASK]", "。", "[SEP]")]
    assert len(long_row) == 32 and long_row[-len(prompt):] == prompt  # the whole prompt, then [SEP], at the end
    assert short_row[:9] == [vocab["[CLS]"], vocab["差"]] + prompt and not any(short_row[9:])
    assert [row[w] for row, w in zip(reader.rows, reader.where)] == [vocab["[MASK]"]] * 2  # read at the blank


def test_zero_shot_scores_the_test_split_with_the_chosen_prompt_only():
    vocab = helpers.load_vocab(helpers.EMBEDDED_BERT_DIR)
    tokenizer = helpers.load_tokenizer(helpers.EMBEDDED_BERT_DIR)
    reader = BlankReader(vocab)
    val, test = (["房间很好", "太差"], [1, 0]), (["环境好", "质量差", "好评"], [1, 0, 1])
    pretrain.zero_shot(reader, tokenizer, vocab, val, test, seq_len=32)
    assert len(reader.rows) == len(pretrain.PROMPTS) * len(val[0]) + len(test[0])


class NoisyBlankReader(BlankReader):
    """Each row's log-odds of 好 over 差 are +1 (the row holds 好) or -1, plus noise that depends on the whole
    row, prompt included (crc32: the same in every run). Each prompt alone is a noisy judge; their mean is less
    noisy, so the ensemble should win on validation data."""

    def __call__(self, ids, where):
        self.rows += list(ids)
        p = np.full((len(ids), len(self.vocab)), 1e-6)
        for r, row in enumerate(ids):
            noise = np.random.default_rng(zlib.crc32(row.tobytes())).uniform(-3, 3)
            odds = (1 if (row == self.vocab["好"]).any() else -1) + noise
            p[r, self.vocab["好"]], p[r, self.vocab["差"]] = 0.5 / (1 + np.exp(-odds)), 0.5 / (1 + np.exp(odds))
        return p


def test_the_ensemble_of_prompts_averages_standardised_scores_and_is_chosen_when_it_validates_best():
    vocab = helpers.load_vocab(helpers.EMBEDDED_BERT_DIR)
    tokenizer = helpers.load_tokenizer(helpers.EMBEDDED_BERT_DIR)
    words = "房间服务早餐环境质量价格位置味道物流包装"
    def reviews(offset):
        texts = [f"{a}{b}{'好' if i % 2 else '差'}" for i, (a, b) in enumerate(zip(words * 4, words[offset:] * 4))]
        return texts, [i % 2 for i in range(len(texts))]
    val, test = reviews(1), reviews(3)
    reader = NoisyBlankReader(vocab)
    result = pretrain.zero_shot(reader, tokenizer, vocab, val, test, seq_len=32)
    singles = [t["val_accuracy"] for t in result["trials"] if t["prompt"] != pretrain.ENSEMBLE]
    assert result["chosen"]["prompt"] == pretrain.ENSEMBLE and result["chosen"]["val_accuracy"] > max(singles)
    assert len(reader.rows) == len(pretrain.PROMPTS) * (len(val[0]) + len(test[0]))  # every prompt on test too
    # the ensemble by hand: each combination's log-odds, standardised with its validation mean and deviation
    def log_odds(texts, prompt, verbalizer):
        p = pretrain.blank_probabilities(NoisyBlankReader(vocab), texts, tokenizer, vocab, prompt, 32)
        positive, negative = (p[:, [vocab[w] for w in side]].sum(1) for side in pretrain.VERBALIZERS[verbalizer])
        return np.log(positive) - np.log(negative)
    combos = [(prompt, name) for prompt in pretrain.PROMPTS for name in pretrain.VERBALIZERS]
    standardised = []
    for combo in combos:
        on_val = log_odds(val[0], *combo)
        standardised.append((log_odds(test[0], *combo) - on_val.mean()) / on_val.std())
    correct = (np.mean(standardised, 0) > result["chosen"]["threshold"]) == np.array(test[1])
    assert result["test_accuracy"] == pytest.approx(correct.mean())


@pytest.mark.parametrize("where", ["data/result.json", "existing"])
def test_evaluate_refuses_to_write_a_tracked_folder_or_overwrite_a_result(where, tmp_path, capsys):
    output = tmp_path / "result.json" if where == "existing" else helpers.ROOT / where
    if where == "existing":
        output.write_text("{}")
    with pytest.raises(SystemExit):
        pretrain.evaluate_main([str(helpers.EMBEDDED_BERT_DIR), "--output", str(output)])
    assert ("exists" if where == "existing" else "not under outputs/") in capsys.readouterr().err
    assert where == "existing" or not output.exists()


# --- the short comparison runs (pretrain.py compare) ------------------------------------------------------
def test_compare_runs_each_recipe_once_with_its_flags_and_records_them(tmp_path, monkeypatch):
    commands = []

    def fake_run(command, check):  # stands in for a 12-minute run: writes what a finished run writes
        commands.append(command)
        run_dir = Path(command[2])
        run_dir.mkdir(parents=True)
        (run_dir / "result.json").write_text(json.dumps({"steps": 7, "training_seconds": 6.0,
                                                         "val_reviews": {"mlm_accuracy": 0.4}}))
        (run_dir / "log.json").write_text(json.dumps({"step": [7]}))

    monkeypatch.setattr(pretrain.subprocess, "run", fake_run)
    record = pretrain.compare_main([str(tmp_path), "--recipes", "AE", "--minutes", "0.1"])
    assert [Path(c[2]).name for c in commands] == ["A", "E"]
    for command, name in zip(commands, "AE"):
        assert command[3:7] == ["--minutes", "0.1", "--init-from", "data/mini-bert-zh"]
        assert command[-len(pretrain.RECIPES[name][1]):] == pretrain.RECIPES[name][1]
    assert json.loads((tmp_path / "comparisons.json").read_text()) == record
    assert list(record["runs"]) == ["A", "E"] and record["runs"]["E"]["flags"] == pretrain.RECIPES["E"][1]
    assert set(record["machine"]) == {"cpu", "family_model", "cores", "bfloat16"}
    pretrain.compare_main([str(tmp_path), "--recipes", "AE", "--minutes", "0.1"])
    assert len(commands) == 2  # finished runs are not run again: the command resumes where it stopped


def test_compare_names_the_recipes_when_given_an_unknown_one(tmp_path, capsys):
    with pytest.raises(SystemExit):
        pretrain.compare_main([str(tmp_path), "--recipes", "AZ"])
    assert "no recipe Z; the recipes are A, B, C, D, E, F" in capsys.readouterr().err
