"""Unit tests for helpers.py: environment, profile, fonts, data loading, checkpoint location, encoding."""

import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import helpers

ROOT = helpers.ROOT


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter at the repository root, with `env` on top of ours."""
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=300)


# --- environment ------------------------------------------------------------------------------
def test_importing_helpers_first_makes_tensorflow_use_tf_keras():
    # a fresh interpreter without TF_USE_LEGACY_KERAS: only helpers can have set it
    result = run_python("import helpers, os\nimport tensorflow as tf\n"
                        "print(os.environ['TF_USE_LEGACY_KERAS'], tf.keras.layers.Dense.__module__)")
    assert result.returncode == 0, result.stderr
    value, module = result.stdout.split()
    assert value == "1" and module.startswith("tf_keras"), result.stdout
    assert helpers.keras.layers.Dense.__module__.startswith("tf_keras")


def test_importing_helpers_after_tensorflow_with_keras3_fails_clearly():
    result = run_python("import tensorflow\nimport helpers")
    assert result.returncode != 0
    assert "RuntimeError" in result.stderr
    assert "Restart the kernel" in result.stderr and "import helpers" in result.stderr


def test_importing_helpers_after_tensorflow_with_legacy_keras_already_set_works():
    result = run_python("import tensorflow\nimport helpers\nprint(helpers.keras.__name__)", TF_USE_LEGACY_KERAS="1")
    assert result.returncode == 0, result.stderr


def test_tensorflow_logs_nothing_natively_after_importing_helpers():
    # the start-up lines, and the once-per-process notice some CPUs log at the first integer transpose
    # (keras-bert's training models do one): a notebook cell would show them
    result = run_python("import helpers\nimport tensorflow as tf\n"
                        "cpu = tf.config.list_physical_devices('CPU')[0]  # notebook 03 still splits the CPU\n"
                        "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] *"
                        " 2)\n"
                        "tf.transpose(tf.constant([[1, 2, 3], [4, 5, 6]])).numpy()\n"
                        "helpers.keras_bert.get_model(token_num=30, embed_dim=8, transformer_num=1, head_num=2,\n"
                        "                             feed_forward_dim=8, seq_len=8, training=True)")
    assert result.returncode == 0, result.stderr
    assert not re.search(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog", result.stderr, re.M), result.stderr


FAULTS_PER_64_MB_TENSOR = """
import helpers, os
import tensorflow as tf
def minor_faults():
    return int(open(f"/proc/{os.getpid()}/stat").read().split()[9])
x = tf.ones((4096, 4096))  # 64 MB: glibc's malloc maps (and unmaps) a block this large on its own
for _ in range(3):
    (x + 1.0).numpy()  # warm-up
before = minor_faults()
for _ in range(10):
    (x + 1.0).numpy()
print(os.environ["TF_CPU_ALLOCATOR_USE_BFC"], (minor_faults() - before) / 10)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="counts page faults with Linux's /proc")
def test_helpers_makes_tensorflow_reuse_cpu_memory_instead_of_faulting_it_in_every_step():
    pooled = run_python(FAULTS_PER_64_MB_TENSOR)
    assert pooled.returncode == 0, pooled.stderr
    unpooled = run_python(FAULTS_PER_64_MB_TENSOR, TF_CPU_ALLOCATOR_USE_BFC="false")  # a user's own choice stands
    assert unpooled.returncode == 0, unpooled.stderr
    (setting, pooled_faults), (user_setting, unpooled_faults) = [r.stdout.split() for r in (pooled, unpooled)]
    assert setting == "true" and user_setting == "false"
    # Without the pool, on machines that hand freed memory back (virtual machines with free page reporting, where
    # the stored outputs ran), each new 64 MB result is faulted in page by page: 16,929 faults against 544 with
    # the pool there. Elsewhere freed blocks stay mapped and both counts are the same small number (544 each on
    # a 2-core AMD EPYC on 2026-12-01), so the pool can only be checked where there is something to remove.
    if float(unpooled_faults) > 4096:  # a quarter of the 16,384 pages of 4 KB
        assert float(pooled_faults) < float(unpooled_faults) / 10, (pooled_faults, unpooled_faults)


@pytest.mark.parametrize("quick, profile, expected", [
    ("1", "", "quick"), ("0", "", "full"), ("", "", "full"), (" 1 ", "", "quick"),
    ("", "workshop", "workshop"), ("0", "Workshop", "workshop"), ("", "full", "full"), ("1", "quick", "quick"),
])
def test_run_profile_reads_the_environment(monkeypatch, quick, profile, expected):
    monkeypatch.setenv("TUTORIAL_QUICK", quick)
    monkeypatch.setenv("TUTORIAL_PROFILE", profile)
    assert helpers.run_profile() == expected


@pytest.mark.parametrize("quick, profile, message", [
    ("yes", "", "TUTORIAL_QUICK='yes'"),
    ("", "fast", "TUTORIAL_PROFILE='fast'; use one of full, workshop, quick"),
    ("1", "workshop", "TUTORIAL_QUICK=1 and TUTORIAL_PROFILE=workshop disagree"),
])
def test_run_profile_rejects_unknown_or_conflicting_values(monkeypatch, quick, profile, message):
    monkeypatch.setenv("TUTORIAL_QUICK", quick)
    monkeypatch.setenv("TUTORIAL_PROFILE", profile)
    with pytest.raises(ValueError, match=re.escape(message)):
        helpers.run_profile()


def test_each_profile_keeps_its_own_notebook_03_files(monkeypatch):
    full, quick = helpers.classifier_path(quick=False), helpers.classifier_path(quick=True)
    assert full.parent.name == "03_training" and quick.parent.name == "03_training-quick"
    monkeypatch.setattr(helpers, "PROFILE", "workshop")
    assert helpers.classifier_path().parent.name == "03_training-workshop"
    assert helpers.results_path().name == "03_training-workshop.json"
    assert helpers.results_path(quick=False).name == "03_training.json"


def test_paths_do_not_depend_on_the_working_directory():
    result = run_python(f"import sys; sys.path.insert(0, {str(ROOT)!r}); import os; os.chdir('/');"
                        "import helpers; print(helpers.DATA_DIR)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(ROOT / "data")


def test_output_dir_creates_a_folder_under_outputs():
    path = helpers.output_dir("tests", "nested")
    assert path.is_dir() and path.is_relative_to(helpers.OUTPUTS_DIR)


def test_seed_everything_makes_numpy_and_tensorflow_repeatable():
    helpers.seed_everything(7)
    first = (np.random.rand(3), helpers.tf.random.uniform([3]).numpy())
    helpers.seed_everything(7)
    second = (np.random.rand(3), helpers.tf.random.uniform([3]).numpy())
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])


# --- fonts ------------------------------------------------------------------------------------
def test_a_cjk_font_is_installed_and_renders_chinese_without_missing_glyphs():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert helpers.use_cjk_font() in helpers.CJK_FONTS, "install a CJK font: " + helpers.FONT_INSTALL_HINT
    fig, ax = plt.subplots()
    ax.set_title("评论长度分布：负面与正面")
    ax.plot([-1, 1], [-2, 2])  # negative tick labels: the minus sign must render too
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" becomes an error
        fig.canvas.draw()
    plt.close(fig)


def test_without_a_cjk_font_use_cjk_font_warns_with_the_install_command(monkeypatch):
    from matplotlib import font_manager

    monkeypatch.setattr(font_manager.fontManager, "ttflist", [])
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda *args, **kwargs: [])
    with pytest.warns(UserWarning, match="apt-get install fonts-wqy-microhei"):
        assert helpers.use_cjk_font() is None


def test_use_cjk_font_finds_a_font_installed_after_matplotlib_cached_its_list(monkeypatch):
    from matplotlib import font_manager

    cjk = [f for f in font_manager.fontManager.ttflist if f.name in helpers.CJK_FONTS]
    assert cjk, "install a CJK font: " + helpers.FONT_INSTALL_HINT
    monkeypatch.setattr(font_manager.fontManager, "ttflist",
                        [f for f in font_manager.fontManager.ttflist if f.name not in helpers.CJK_FONTS])
    assert helpers.use_cjk_font() in helpers.CJK_FONTS


# --- load_reviews -----------------------------------------------------------------------------
def test_load_reviews_returns_the_validated_data():
    df = helpers.load_reviews()
    assert list(df.columns) == ["text", "label", "split"]
    assert df["label"].dtype == np.int64 and set(df["label"]) == {0, 1}
    assert set(df["split"]) == {"train", "val", "test"}


def write_csv(tmp_path, text: str):
    path = tmp_path / "reviews.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("csv, message", [
    ("text,label\n好,1\n", r"missing: \['split'\]"),
    ("text,label,split,score\n好,1,train,5\n", r"extra: \['score'\]"),
    ("text,label,split\n好,1,train\n差,2,train\n一般,,val\n", r"label not 0 or 1 on line\(s\) 3, 4"),
])
def test_load_reviews_names_the_problem_columns_and_lines(tmp_path, csv, message):
    with pytest.raises(ValueError, match=message):
        helpers.load_reviews(write_csv(tmp_path, csv))


def test_load_reviews_names_unknown_splits_and_empty_texts(tmp_path):
    path = write_csv(tmp_path, "text,label,split\n好,1,dev\n  ,0,train\n")
    with pytest.raises(ValueError) as error:
        helpers.load_reviews(path)
    assert "split not one of" in str(error.value) and "line(s) 2" in str(error.value)
    assert "empty text on line(s) 3" in str(error.value)


def test_load_reviews_keeps_odd_but_valid_texts(tmp_path):
    path = write_csv(tmp_path, 'text,label,split\n"逗号,和""引号""",1,train\nNA,0,test\n😀,1,val\n')
    df = helpers.load_reviews(path)
    assert df["text"].tolist() == ['逗号,和"引号"', "NA", "😀"]  # "NA" is text, not a missing value


def test_load_reviews_of_a_missing_file_says_how_to_rebuild(tmp_path):
    with pytest.raises(FileNotFoundError, match="build_data.py"):
        helpers.load_reviews(tmp_path / "nope.csv")


# --- checkpoint location ----------------------------------------------------------------------
def test_bert_dir_defaults_to_v2_which_shares_v1s_vocabulary_and_shape(monkeypatch):
    monkeypatch.delenv("BERT_DIR", raising=False)
    assert helpers.bert_dir() == helpers.DEFAULT_BERT_DIR == helpers.DATA_DIR / "mini-bert-zh-v2"
    # notebooks 05 and 06 read v1's vocabulary and config (EMBEDDED_BERT_DIR) for models that 01-04 load
    assert helpers.load_vocab(helpers.DEFAULT_BERT_DIR) == helpers.load_vocab(helpers.EMBEDDED_BERT_DIR)
    assert helpers.load_config(helpers.DEFAULT_BERT_DIR) == helpers.load_config(helpers.EMBEDDED_BERT_DIR)


@pytest.mark.parametrize("flags, expected", [
    ("fpu vme avx512f avx512_bf16 avx512_vnni", True),   # AMD Zen 4, Intel Cooper Lake: AVX-512 BF16
    ("fpu avx512f amx_bf16 amx_tile amx_int8", True),    # Intel Sapphire Rapids: AMX
    ("fpu vme avx2 avx512f avx512_vnni", False),         # AVX-512 without bfloat16 instructions
    ("fpu avx2 fma", False),
])
def test_cpu_has_bfloat16_reads_the_kernel_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: some CPU\nflags\t\t: {flags}\n\n"
                       f"processor\t: 1\nflags\t\t: {flags}\n")
    assert helpers.cpu_has_bfloat16(cpuinfo) is expected


def test_cpu_has_bfloat16_is_false_without_the_kernel_file(tmp_path):
    assert helpers.cpu_has_bfloat16(tmp_path / "no-such-file") is False  # not Linux: no evidence, no bfloat16


def test_cpu_description_reads_the_first_processor(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2\n\n"
                       "processor\t: 1\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2\n")
    assert helpers.cpu_description(cpuinfo) == {"cpu": "AMD EPYC", "family_model": "25/1", "cores": os.cpu_count(),
                                                "bfloat16": False}
    assert helpers.cpu_description(tmp_path / "no-such-file")["cpu"] == "unknown"


def test_bert_dir_that_does_not_exist_names_the_variable_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("BERT_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError) as error:
        helpers.bert_dir()
    message = str(error.value)
    assert "BERT_DIR=" in message and "not a folder" in message
    assert "chinese_L-12_H-768_A-12" in message and "Unset BERT_DIR" in message


def test_bert_dir_lists_the_missing_files(monkeypatch, tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n", encoding="utf-8")
    monkeypatch.setenv("BERT_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        helpers.bert_dir()
    # exactly the three missing files, in layout order: vocab.txt is there and must not be listed
    assert "has no bert_config.json, bert_model.ckpt.index, bert_model.ckpt.data-00000-of-00001;" in str(error.value)


def test_load_tokenizer_uses_the_active_vocabulary(monkeypatch, tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n好\n", encoding="utf-8")
    monkeypatch.setenv("BERT_DIR", str(tmp_path))
    tokenizer = helpers.load_tokenizer()
    assert tokenizer.encode("好差")[0] == [2, 5, 1, 3]


def test_download_google_chinese_bert_offline_says_what_to_do(monkeypatch):
    import keras_bert

    def offline(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras_bert, "get_pretrained", offline)
    with pytest.raises(ConnectionError, match="set BERT_DIR to it") as error:
        helpers.download_google_chinese_bert()
    assert "name resolution" in str(error.value)


def test_download_google_chinese_bert_returns_the_checked_folder(monkeypatch, tmp_path):
    import keras_bert

    for name in helpers.CHECKPOINT_FILES:
        (tmp_path / name).write_text("x")
    monkeypatch.setattr(keras_bert, "get_pretrained", lambda info: str(tmp_path))
    assert helpers.download_google_chinese_bert() == tmp_path


# --- encode_texts -----------------------------------------------------------------------------
TEXTS = ["这家酒店的服务很好！", "iPhone12 Pro真香，ＡＢＣ１２３", "發票很麻煩", "😀" * 3, "好" * 300, "a b\tc"]


@pytest.fixture(scope="module")
def tokenizer():
    return helpers.load_tokenizer(helpers.EMBEDDED_BERT_DIR)


def test_encode_texts_equals_keras_bert_encode_row_by_row(tokenizer):
    token_ids, segment_ids = helpers.encode_texts(TEXTS, tokenizer, seq_len=32)
    assert token_ids.shape == segment_ids.shape == (len(TEXTS), 32)
    assert token_ids.dtype == segment_ids.dtype == np.int32
    for i, text in enumerate(TEXTS):
        ids, segments = tokenizer.encode(text, max_len=32)
        assert token_ids[i].tolist() == ids and segment_ids[i].tolist() == segments


def test_encode_texts_accepts_a_pandas_series_and_shows_progress_on_request(tokenizer, capsys):
    token_ids, _ = helpers.encode_texts(pd.Series(TEXTS), tokenizer, seq_len=16, progress=True)
    assert token_ids.shape == (len(TEXTS), 16)
    assert "encoding" in capsys.readouterr().err


def test_encode_texts_truncates_a_very_long_review(tokenizer):
    token_ids, _ = helpers.encode_texts(["好" * 10_000], tokenizer, seq_len=128)
    assert token_ids[0, 0] == 2 and token_ids[0, -1] == 3 and (token_ids[0, 1:-1] == token_ids[0, 1]).all()


@pytest.mark.parametrize("texts, error, message", [
    ("一条评论", TypeError, "not one string"),
    (["好", None], TypeError, r"texts\[1\] is NoneType"),
    (["好", float("nan")], TypeError, r"texts\[1\] is float"),
    (["好", ""], ValueError, r"texts\[1\] is empty"),
    ([" \u3000\n"], ValueError, r"texts\[0\] is empty or only whitespace"),
])
def test_encode_texts_rejects_bad_input_clearly(tokenizer, texts, error, message):
    with pytest.raises(error, match=message):
        helpers.encode_texts(texts, tokenizer, seq_len=16)


@pytest.mark.parametrize("seq_len", [1, 0, 16.0, "128"])
def test_encode_texts_rejects_a_bad_sequence_length(tokenizer, seq_len):
    with pytest.raises(ValueError, match="seq_len"):
        helpers.encode_texts(["好"], tokenizer, seq_len=seq_len)
