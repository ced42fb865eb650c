"""Running a notebook twice in one kernel gives the same checked outputs (workshop attendees rerun
cells), and a run leaves data/ and notebooks/ exactly as they were."""

import configparser
import re

import pytest

import helpers

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((helpers.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SANITIZE = configparser.ConfigParser()
SANITIZE.read(helpers.ROOT / "tests" / "sanitize.cfg")


def checked_output(cell) -> str:
    """What nbval compares for a cell (stdout and text/plain results, sanitized), or None if ignored."""
    if "NBVAL_IGNORE_OUTPUT" in cell.source or "NBVAL_SKIP" in cell.source:
        return None
    text = "".join(o.get("text", "") if o.get("output_type") == "stream" and o.get("name") == "stdout"
                   else o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", []))
    for section in SANITIZE.sections():
        text = re.sub(SANITIZE[section]["regex"], SANITIZE[section]["replace"], text)
    return text


def snapshot() -> dict:
    """Size and modification time of every file in data/ and notebooks/."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for folder in ("data", "notebooks")
            for p in (helpers.ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts
            and ".ipynb_checkpoints" not in p.parts}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_running_a_notebook_twice_in_one_kernel_gives_the_same_checked_outputs(path, monkeypatch):
    monkeypatch.setenv("TUTORIAL_QUICK", "1")
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    notebook.cells = [nbformat.v4.new_code_cell(c.source) for c in code + code]
    before = snapshot()
    nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    first, second = notebook.cells[:len(code)], notebook.cells[len(code):]
    differ = [i for i, (a, b) in enumerate(zip(first, second)) if checked_output(a) != checked_output(b)]
    assert not differ, f"{path.name}: code cells {differ} print something else the second time: " + \
        "; ".join(f"{checked_output(first[i])!r} != {checked_output(second[i])!r}" for i in differ[:2])
    assert snapshot() == before, f"{path.name} changed files in data/ or notebooks/"

