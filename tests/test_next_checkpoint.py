"""data/mini-bert-zh-v2, the second version of the embedded checkpoint (issue #11): v1 continued in two stages, each
committed as soon as it ended so that it survives the session that trained it. It is what notebooks 01-04 load
without BERT_DIR (helpers.DEFAULT_BERT_DIR); notebook 05 exports and scores v1 too, so v2 must stay a drop-in
replacement for v1."""

import json

import describe_checkpoint
import numpy as np
import pretrain
import pytest
import tensorflow as tf

import helpers

V1, V2 = helpers.EMBEDDED_BERT_DIR, helpers.DATA_DIR / "mini-bert-zh-v2"


@pytest.fixture(scope="module")
def run():
    return json.loads((V2 / "pretraining_run.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def evaluation():
    return json.loads((V2 / "evaluation.json").read_text(encoding="utf-8"))


def test_v2_is_complete_small_and_a_drop_in_replacement_for_v1():
    for training in (False, True):
        assert helpers.check_checkpoint(V2, training=training) == helpers.load_config(V1)
    assert (V2 / "vocab.txt").read_bytes() == (V1 / "vocab.txt").read_bytes()  # build_data.py --check covers v1's
    size = sum(p.stat().st_size for p in V2.iterdir())
    assert size <= 30e6, f"data/mini-bert-zh-v2 is {size / 1e6:.1f} MB; the budget is 30 MB"
    stored = dict(tf.train.list_variables(str(V2 / "bert_model.ckpt")))
    assert stored == dict(tf.train.list_variables(str(V1 / "bert_model.ckpt")))  # Google's names, v1's shapes


def test_v2_loads_both_ways_and_was_trained_beyond_v1():
    body = helpers.load_bert(seq_len=16, folder=V2)
    pretraining = helpers.load_bert(seq_len=16, training=True, folder=V2)
    assert [o.shape.as_list() for o in pretraining.outputs] == [[None, 16, 4047], [None, 2]]
    wq, _, wk, _, wv, *_ = body.get_layer("Encoder-1-MultiHeadSelfAttention").get_weights()
    assert not np.allclose(wq, wk) and not np.allclose(wk, wv)
    old = tf.train.load_checkpoint(str(V1 / "bert_model.ckpt"))
    new = tf.train.load_checkpoint(str(V2 / "bert_model.ckpt"))
    name = "bert/encoder/layer_0/attention/self/query/kernel"
    assert not np.allclose(old.get_tensor(name), new.get_tensor(name))


def test_the_run_record_matches_the_checkpoint_and_each_stage_ran_its_whole_schedule(run):
    stored = sum(int(np.prod(shape)) for _, shape in tf.train.list_variables(str(V2 / "bert_model.ckpt")))
    assert run["parameters"] == stored and run["config"] == helpers.load_config(V2)
    first, second = run["continues"], run  # stage 1 continued v1; stage 2 continued stage 1
    assert "continues" not in first and first["commit"] == "0c6fc75"  # where stage 1's export was committed
    assert first["settings"]["init_from"] == "data/mini-bert-zh"  # v1 (commit 80d01dd's folder)
    assert second["settings"]["init_from"] == "data/mini-bert-zh-v2"  # stage 1's export, committed in 0c6fc75
    assert first["settings"]["seed"] != second["settings"]["seed"]  # new masks and pairs, not stage 1's again
    for stage in (first, second):
        log = stage["log"]
        assert log["step"][-1] == stage["steps"] and log["learning_rate"][-1] == 0.0  # decayed to zero: it ended
        assert stage["config"] == run["config"] and stage["val_reviews"]["masked_tokens"] > 10_000
    assert {k: v for k, v in first["settings"].items() if k not in ("init_from", "seed")} == {
        k: v for k, v in second["settings"].items() if k not in ("init_from", "seed")}  # the same recipe


def test_the_evaluation_chose_on_validation_and_reports_a_consistent_interval(evaluation):
    shot = evaluation["zero_shot"]
    candidates = {(trial["prompt"], trial["verbalizer"]) for trial in shot["trials"]}
    assert candidates == {(p, v) for p in pretrain.PROMPTS for v in pretrain.VERBALIZERS} | {
        (pretrain.ENSEMBLE, pretrain.ENSEMBLE)}  # every candidate of today's pretrain.py, the ensemble included
    best = max(trial["val_accuracy"] for trial in shot["trials"])
    assert shot["chosen"]["val_accuracy"] == best and shot["chosen"] in shot["trials"]
    low, high = shot["test_ci95"]
    assert low < shot["test_accuracy"] < high
    assert evaluation["folder"] == "mini-bert-zh-v2"


def test_the_short_comparison_runs_are_recorded_and_v2s_recipe_is_one_of_them(run):
    """pretraining_comparisons.json is what `pretrain.py compare` wrote (issue #11: record the short runs that chose
    the recipe): each run continued v1 with its recipe's flags for the whole budget, and v2's stages used one of the
    recipes exactly (E), apart from the budget, seed and logging."""
    record = json.loads((V2 / "pretraining_comparisons.json").read_text(encoding="utf-8"))
    assert record["init_from"] == "data/mini-bert-zh" and {"cpu", "cores", "bfloat16"} <= set(record["machine"])
    for name, entry in record["runs"].items():
        assert (entry["recipe"], entry["flags"]) == pretrain.RECIPES[name]
        wanted = vars(pretrain.parse_args(["unused", "--minutes", "1", "--init-from", "data/mini-bert-zh",
                                           "--log-every", "100", *entry["flags"]]))
        assert all(entry["settings"][k] == (str(v) if k == "init_from" else v) for k, v in wanted.items()
                   if k in entry["settings"])
        assert entry["training_seconds"] >= 60 * record["minutes"] and entry["log"]["learning_rate"][-1] == 0.0
        assert entry["log"]["step"][-1] == entry["steps"] and entry["val_reviews"]["masked_tokens"] > 10_000
    score = {name: entry["val_reviews"]["mlm_accuracy"] for name, entry in record["runs"].items()}
    token_masked = [score[name] for name in score if "--no-wwm" in pretrain.RECIPES[name][1]]
    assert score["A"] < min(token_masked)  # data/README.md: whole-word masking ends below every token-masked recipe
    ignore = ("init_from", "seed", "log_every", "save_every")
    assert {k: v for k, v in record["runs"]["E"]["settings"].items() if k not in ignore} == {
        k: v for k, v in run["continues"]["settings"].items() if k not in ignore}


def test_the_v2_readme_says_what_its_records_say(evaluation):
    """The page data/describe_checkpoint.py writes (tests/test_embedded_checkpoint.py checks it is up to date)."""
    text = (V2 / "README.md").read_text(encoding="utf-8")
    shot = evaluation["zero_shot"]
    assert f"**{evaluation['val_test_reviews']['mlm_accuracy']:.3f}**" in text
    assert f"**{shot['test_accuracy']:.3f}**" in text
    assert f"`{shot['chosen']['prompt']}` with {shot['chosen']['verbalizer']}" in text
    assert "(recipe E below)" in text  # v2's stages used recipe E exactly (the test above checks their settings)
    assert describe_checkpoint.v1_masked_accuracy() < evaluation["val_test_reviews"]["mlm_accuracy"]
    assert text.count("| all of the above, averaged |") == 1  # the ensemble's row, named as pretrain.py names it
    assert describe_checkpoint.ENSEMBLE == pretrain.ENSEMBLE


def test_the_v2_readme_refuses_short_runs_scored_on_different_masks(tmp_path, monkeypatch):
    """The page compares the short runs' accuracies, which only means something on one set of masked tokens."""
    for f in V2.iterdir():
        (tmp_path / f.name).symlink_to(f)
    record = json.loads((V2 / "pretraining_comparisons.json").read_text(encoding="utf-8"))
    first = next(iter(record["runs"].values()))
    first["val_reviews"]["masked_tokens"] += 1
    (tmp_path / "pretraining_comparisons.json").unlink()
    (tmp_path / "pretraining_comparisons.json").write_text(json.dumps(record), encoding="utf-8")
    monkeypatch.setattr(describe_checkpoint, "V2_FOLDER", tmp_path)
    with pytest.raises(SystemExit, match="different numbers of masked tokens"):
        describe_checkpoint.readme_v2()
