"""notebooks/gpu_check.py, the instructors' GPU measurement (issue #16): it refuses to run without a GPU,
and its measuring code runs end to end on the CPU (`--device CPU:0`), on the tests' tiny checkpoint; and
notebooks/speed_modes.py, the CPU benchmark of the speed modes, runs as a script."""

import json
import os
import subprocess
import sys

import pytest

import helpers

SCRIPT = helpers.ROOT / "notebooks" / "gpu_check.py"


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=helpers.ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=600)


def test_without_a_gpu_it_says_so_and_measures_nothing(tmp_path):
    if helpers.tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    result = run("--output", str(tmp_path / "gpu_check.json"))
    assert result.returncode == 2, result.stderr
    assert "No GPU is visible to TensorFlow" in result.stderr and "tensorflow[and-cuda]" in result.stderr
    assert not (tmp_path / "gpu_check.json").exists()


def test_every_configuration_is_measured_on_the_cpu(tiny_dir, tmp_path):
    output = tmp_path / "gpu_check.json"
    result = run("--device", "CPU:0", "--models", "mini", "--steps", "1", "--batch-size", "2", "--seq-len", "16",
                 "--output", str(output), BERT_DIR=str(tiny_dir))
    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())
    assert report["device"] == "CPU:0" and report["seq_len"] == 16
    measured = report["results"]["mini"]
    assert set(measured) == {"float32", "xla", "mixed_float16", "mixed_bfloat16"}
    assert all(m["samples_per_s"] > 0 and m["peak_memory_bytes"] is None for m in measured.values()), measured


def test_speed_modes_runs_as_a_script_and_prints_one_json_line_per_block():
    """notebooks/speed_modes.py (issue #16's benchmark of the speed modes) must import helpers before TensorFlow
    when run as a script; it once imported TensorFlow first and failed at start-up, unnoticed."""
    done = subprocess.run([sys.executable, str(helpers.ROOT / "notebooks" / "speed_modes.py"), "--steps", "1",
                           "--blocks", "2", "--autotune", "off"], cwd=helpers.ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [line["block"] for line in lines] == [0, 1]
    host = helpers.cpu_description()  # each line says which CPU it ran on: cloud CPUs of one name differ
    assert all(line["samples_per_s"] > 0 and {k: line[k] for k in host} == host for line in lines)
