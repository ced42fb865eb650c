"""What a reader sees: JupyterLab started from the project's environment, driven by a real headless Chromium.

nbval checks what the kernel prints; this checks what the browser shows. It starts JupyterLab on a free
local port with a token, on a scratch copy of the notebooks (JupyterLab autosaves what it runs, and a test
must not touch tracked files; `helpers.py` is linked, so the kernel still finds data/ and the checkpoint),
then opens every notebook, runs notebook 04 (quick profile) and moves a slider of its attention explorer.
A screenshot of every step goes to outputs/screenshots/ (git-ignored). Set LAB_README_SCREENSHOT=1 to also
write the explorer's screenshot to notebooks/figures/, where the README shows it (on request only).

Needs Debian's `chromium` and `chromium-driver`; without them the test is skipped, except under CI=true.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from jupyterlab.commands import get_app_dir

import helpers

INSTALL = "apt-get install chromium chromium-driver"
BROWSER, DRIVER = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
SCREENSHOTS = helpers.OUTPUTS_DIR / "screenshots"
README_FIGURE = helpers.ROOT / "notebooks" / "figures" / "lab_explorer.png"
NOTEBOOKS = sorted((helpers.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# The project's JupyterLab settings, written into the environment by `make setup` (Makefile): no news prompt,
# no update check. The test asks JupyterLab where it reads them, so it checks what `make lab` uses.
SETTINGS = Path(get_app_dir()) / "settings" / "overrides.json"
DISTRACTIONS = ("official Jupyter news", "Error displaying widget", "Kernel Restarting", "Select Kernel")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def browser_tools():
    if not (BROWSER and DRIVER):
        message = f"no Chromium or chromedriver on PATH: install them with `{INSTALL}`"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI must run this test, not skip it)")
        pytest.skip(message)
    return BROWSER, DRIVER


@pytest.fixture(scope="module")
def lab(browser_tools, tmp_path_factory):
    """A JupyterLab server on a scratch copy of the notebooks; yields (base URL, token); stops it after."""
    assert SETTINGS.exists(), f"{SETTINGS} is missing: run `make setup` (it writes the quiet JupyterLab settings)"
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(helpers.ROOT / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns("*.py", "__pycache__", ".ipynb_checkpoints"))
    (root / "helpers.py").symlink_to(helpers.ROOT / "helpers.py")
    settings = root / "settings"  # the project's settings, plus one for the test: render every cell
    settings.mkdir()
    overrides = json.loads(SETTINGS.read_text())
    overrides["@jupyterlab/notebook-extension:tracker"] = {"windowingMode": "none"}
    (settings / "overrides.json").write_text(json.dumps(overrides))
    port, token = free_port(), secrets.token_hex(16)
    log = (root / "lab.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", f"--LabApp.app_settings_dir={settings}",
         f"--LabApp.workspaces_dir={root / 'workspaces'}", "--LabApp.expose_app_in_browser=True"]
        + (["--allow-root"] if os.geteuid() == 0 else []),  # CI containers run as root
        env={**os.environ, "TUTORIAL_QUICK": "1"}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def up():
        try:
            return urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).status == 200
        except OSError:
            return server.poll() is not None and pytest.fail(f"JupyterLab exited: {(root / 'lab.log').read_text()}")

    try:
        wait_until(up, 90, "JupyterLab to answer")
        yield base, token
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server and the kernels it started
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def driver(browser_tools):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser_tools[0]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--lang=en-US"):
        options.add_argument(argument)
    chrome = webdriver.Chrome(service=Service(executable_path=browser_tools[1]), options=options)
    yield chrome
    chrome.quit()


def shot(driver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def open_notebook(driver, lab, name: str):
    from selenium.webdriver.common.by import By

    base, token = lab
    driver.get(f"{base}/lab/tree/notebooks/{name}?token={token}&reset")
    wait_until(lambda: driver.execute_script(
        "const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        "return !!(w && w.context && w.context.isReady && w.sessionContext && w.sessionContext.isReady);"),
        90, f"{name} to open with its kernel")
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-RenderedHTMLCommon h1"), 30,
               f"{name}'s title to render")


def visible_distractions(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    text = driver.find_element(By.TAG_NAME, "body").text
    dialogs = [d.text for d in driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog") if d.is_displayed()]
    return [d for d in DISTRACTIONS if d in text] + [f"a dialog: {d[:80]!r}" for d in dialogs]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_renders_in_jupyterlab(lab, driver, path):
    from selenium.webdriver.common.by import By

    open_notebook(driver, lab, path.name)
    headings = [h.text for h in driver.find_elements(By.CSS_SELECTOR, ".jp-RenderedHTMLCommon h1, "
                                                                      ".jp-RenderedHTMLCommon h2")]
    first = json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"][0].lstrip("# ").strip()
    assert headings and headings[0] == first, headings[:3]
    figures = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")
    assert any(f.size["width"] > 100 and f.size["height"] > 100 for f in figures), "no stored figure is shown"
    time.sleep(2)  # prompts and toasts appear shortly after the page
    shot(driver, f"{path.stem}-opened")
    assert not visible_distractions(driver), visible_distractions(driver)


def test_the_attention_explorer_is_alive(lab, driver):
    """Run notebook 04's explorer cells (quick profile) in the browser: the widget renders, and a slider redraws
    the figure. The explorer's cells carry the tag "explorer" (the set-up, the model, the heatmap function and
    the widget); the rest of the notebook runs under nbval, so the browser runs only these."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    tagged = [c for c in json.loads((helpers.ROOT / "notebooks" / "04_attention.ipynb").read_text(encoding="utf-8"))
              ["cells"] if "explorer" in c["metadata"].get("tags", [])]
    assert any("widgets.interactive" in "".join(c["source"]) for c in tagged), "the explorer cell lost its tag"
    open_notebook(driver, lab, "04_attention.ipynb")
    tagged_js = "(c => c.model.type === 'code' && (c.model.getMetadata('tags') || []).includes('explorer'))"
    driver.execute_script("const app = window.jupyterapp, notebook = app.shell.currentWidget.content;"
                          "app.commands.execute('notebook:clear-all-cell-outputs').then(async () => {"  # cleared
                          "  for (let i = 0; i < notebook.widgets.length; i++) {"  # first: stored outputs would
                          f"    if (!{tagged_js}(notebook.widgets[i])) continue;"  # look like a finished run
                          "    notebook.deselectAll(); notebook.activeCellIndex = i;"
                          "    await app.commands.execute('notebook:run-cell');"
                          "  }"
                          "});")
    state = ("const panel = window.jupyterapp.shell.currentWidget;"
             f"const cells = panel.content.widgets.filter({tagged_js});"
             "if (cells.some(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'))) return 'error';"
             "const done = cells.length > 0 && cells.every(c => c.model.executionCount !== null);"
             "return panel.sessionContext.session.kernel.status === 'idle' && done ? 'done' : null;")
    assert wait_until(lambda: driver.execute_script(state), 600, "the explorer's cells to run", poll=2) == "done", \
        f"a cell raised an error in the browser (a cell the explorer needs without the tag?): " \
        f"see {shot(driver, '04_attention-error')}"

    def explorer():
        boxes = driver.find_elements(By.CSS_SELECTOR, ".widget-interact")
        return boxes[0] if boxes and boxes[0].find_elements(By.CSS_SELECTOR, "img") else None

    shot(driver, "04_attention-ran")
    box = wait_until(explorer, 30, "the explorer to render with its figure (is jupyterlab_widgets installed?)")
    assert not visible_distractions(driver), visible_distractions(driver)
    assert box.find_elements(By.CSS_SELECTOR, ".widget-text input"), "no text box"
    sliders = box.find_elements(By.CSS_SELECTOR, ".widget-slider")
    assert len(sliders) == 2, "expected the layer and head sliders"
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", box)
    figure_src = ("const img = document.querySelector('.widget-interact img');"
                  "return img ? img.getAttribute('src') : null;")
    before = driver.execute_script(figure_src)
    shot(driver, "04_attention-explorer")
    if os.environ.get("LAB_README_SCREENSHOT") == "1":
        box.screenshot(str(README_FIGURE))
    head = sliders[1]
    readout = head.find_element(By.CSS_SELECTOR, ".widget-readout")
    value = readout.text
    head.find_element(By.CSS_SELECTOR, ".noUi-handle").send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: readout.text != value, 10, "the head slider to move")

    def redrawn():  # read in one script: the output area swaps its <img> while it redraws, which would
        # leave a stale element between a find and a get_attribute
        src = driver.execute_script(figure_src)
        return src is not None and src != before

    wait_until(redrawn, 60, "the figure to be redrawn for the new head")
    shot(driver, "04_attention-explorer-moved")
    assert box.find_element(By.CSS_SELECTOR, ".widget-readout").text != value
