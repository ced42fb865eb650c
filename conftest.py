"""pytest set-up shared by the unit tests and nbval (the notebooks).

- The tests run every notebook in the quick profile unless TUTORIAL_QUICK is already set.
- helpers is imported before any test module, so that TensorFlow loads with Keras 2.
- nbval compares stored outputs, but not stderr (TensorFlow's log lines and progress bars vary).
"""

import os

os.environ.setdefault("TUTORIAL_QUICK", "1")

import helpers  # noqa: E402,F401  (first: it selects Keras 2 before any test imports TensorFlow)


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)
