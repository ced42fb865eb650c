"""pytest set-up shared by the unit tests and nbval (the notebooks).

- The tests run every notebook in the quick profile unless TUTORIAL_QUICK or TUTORIAL_PROFILE is set.
- helpers is imported before any test module, so that TensorFlow loads with Keras 2.
- nbval compares stored outputs, but not stderr (TensorFlow's log lines and progress bars vary).
- Workshop attendees rerun cells: after nbval has run a notebook's code cells, the same kernel runs
  them all a second time ("Cell N (rerun)" items), and each must again print its stored checked
  output. One execution per notebook serves both checks.
- A test run must leave data/ and notebooks/ exactly as they were (size and modification time).
- pytest-xdist hands out whole files (`--dist loadfile`); the slowest files go first, so that the two
  workers finish together instead of one starting the longest notebook last.
"""

import copy
import os

if "TUTORIAL_PROFILE" not in os.environ:
    os.environ.setdefault("TUTORIAL_QUICK", "1")

import pytest  # noqa: E402

import helpers  # noqa: E402  (first: it selects Keras 2 before any test imports TensorFlow)

WATCHED = ("data", "notebooks")
# measured with `pytest --durations=0` (quick profile): each of these takes minutes, the rest seconds
SLOWEST_FIRST = ("notebooks/03_training.ipynb", "tests/test_gpu_path.py", "notebooks/04_attention.ipynb",
                 "notebooks/05_pretraining.ipynb", "notebooks/06_beyond_bert.ipynb",
                 "notebooks/02_model_assembly.ipynb", "tests/test_robustness.py",
                 "tests/test_lab.py")


def snapshot() -> dict:
    """Size and modification time of every file in data/ and notebooks/."""
    return {str(p.relative_to(helpers.ROOT)): (p.stat().st_size, p.stat().st_mtime_ns)
            for folder in WATCHED for p in (helpers.ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts}


def pytest_sessionstart(session):
    session.config._tree_before = snapshot()


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # pytest-xdist worker: the controller checks once
        return
    after = snapshot()
    changed = sorted(k for k in set(after) | set(session.config._tree_before)
                     if after.get(k) != session.config._tree_before.get(k))
    if changed:
        session.config.get_terminal_writer().line(
            "FAILED: the tests changed files in data/ or notebooks/: " + ", ".join(changed[:10]), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config):
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False  # keep the order below (xdist would sort by item count)


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: files stay whole


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)


def _collect_twice(original):
    def collect(self):
        first = list(original(self))
        yield from first
        for item in first:
            # a copy of the cell: nbval's coalesce_streams extends the reference's first stream output
            # in place, so a shared cell would be compared with its tail twice
            yield type(item).from_parent(self, name=f"{item.name} (rerun)", cell_num=item.cell_num,
                                         cell=copy.deepcopy(item.cell), options=item.options)
    return collect


try:
    from nbval.plugin import IPyNbFile
except ImportError:  # nbval not installed: nothing to patch
    pass
else:
    IPyNbFile.collect = _collect_twice(IPyNbFile.collect)
