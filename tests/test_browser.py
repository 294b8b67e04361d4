"""The app in a real browser: serve it, open it in Chromium, click Train, time the first chart.

Skips cleanly where /usr/bin/chromium or the playwright package is missing. The server is a
subprocess on 127.0.0.1 with its own run store, and it is always killed.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "artifacts"

# A heatmap trace with data in any Plotly chart: the gradient heatmap has been filled.
HEATMAP_FILLED = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).some(
    g => (g.data || []).some(t => t.type === 'heatmap' && t.z))"""  # z arrives as a typed-array spec
CHART_FRAMES = "() => document.querySelectorAll('.js-plotly-plot').length >= 5"
# Each run chart's element gets a mark; a chart drawn into a new element (a remount) has none.
MARK_CHARTS = "() => document.querySelectorAll('.bptt-chart').forEach(d => { d.__mark = 1; })"
CHARTS_KEPT = """() => { const d = Array.from(document.querySelectorAll('.bptt-chart'));
    return [d.length, d.filter(e => e.__mark === 1).length]; }"""
# A chart may skip figures while the page is busy (dashboard/live_chart.js), but never the last one.
LATEST_DRAWN = """() => Array.from(document.querySelectorAll('.bptt-chart')).every(
    d => d.__want && d.__drawn === d.__want.spec + '\\u0000' + d.__want.config)"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("streamlit did not become healthy")


@pytest.fixture
def server(tmp_path):
    with _serve(tmp_path) as url:
        yield url, tmp_path


@contextlib.contextmanager
def _serve(tmp_path: Path, log_name: str = "server.log"):
    """A fresh streamlit server for the app, its run store tmp_path/"runs"; yields its URL."""
    if shutil.which("streamlit") is None and not (Path(sys.executable).parent / "streamlit").exists():
        pytest.skip("streamlit executable not found")
    port = _free_port()
    # the server as users get it: the process pool (conftest sets threads for AppTest)
    env = {**os.environ, "BPTT_LAB_RUNS": str(tmp_path / "runs"), "BPTT_LAB_POOL": "process"}
    log = open(tmp_path / log_name, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        # the server and anything it started: its own process group, by id
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


@pytest.fixture
def browser():
    """Headless Debian Chromium through playwright; the test skips where either is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def _no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("This chart could not be drawn").count() == 0  # live_chart.js's own error


# the wall-clock time at which the browser received the mouse press (the event's own time stamp)
RECORD_MOUSEDOWN = """() => document.addEventListener('mousedown',
    e => { window.__mousedown = performance.timeOrigin + e.timeStamp; }, {capture: true, once: true})"""
LABELS_FIT = """() => Array.from(document.querySelectorAll('.stButton button')).every(
    b => b.scrollWidth <= b.clientWidth + 1)"""
CHARTS_OPAQUE = """() => Array.from(document.querySelectorAll('.bptt-chart, .stPlotlyChart')).every(
    el => { let e = el; while (e) { if (parseFloat(getComputedStyle(e).opacity) < 0.99) return false;
            e = e.parentElement; } return true; })"""


def _press(page, locator) -> None:
    """A user's click: the mouse at the button's centre. (locator.click() first waits until the
    button has been still for two animation frames, which on a busy 2-core machine adds up to
    a second to every timing.)"""
    box = locator.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_train_fills_charts_in_browser(browser, server):
    url, tmp = server
    page = browser.new_page(viewport={"width": 1400, "height": 1700})
    # enough steps that the run cannot finish before the test clicks Stop
    page.goto(url + "/?seq_len=50&steps=20000", timeout=30_000)
    # the chart frames are drawn at page load, so plotly.js is in before the click
    page.wait_for_function(CHART_FRAMES, timeout=60_000)
    train = page.locator(".st-key-btn_train").get_by_role("button", name="Train")  # keyed widgets get an st-key-<key> class
    train.wait_for(state="visible", timeout=10_000)
    page.get_by_text("Estimate:").wait_for(timeout=60_000)  # the training workers are up
    page.wait_for_timeout(500)  # let the first render settle
    page.evaluate(MARK_CHARTS)
    page.evaluate(RECORD_MOUSEDOWN)
    _press(page, train)
    page.wait_for_function(HEATMAP_FILLED, timeout=15_000, polling=20)
    first_chart_s = time.time() - page.evaluate("() => window.__mousedown") / 1000
    print(f"\ntime from the Train mousedown to the first filled chart: {first_chart_s:.3f} s")
    (ARTIFACTS).mkdir(exist_ok=True)
    (ARTIFACTS / "time_to_first_chart.txt").write_text(f"{first_chart_s:.3f}\n")
    # while it trains, charts are redrawn every poll: none may dim (Streamlit's stale fade)
    for _ in range(12):
        assert page.evaluate(CHARTS_OPAQUE), "a chart dimmed while it was redrawn"
        page.wait_for_timeout(97)
    # every poll redrew the charts in place (Plotly.react), on the elements the page loaded with
    count, kept = page.evaluate(CHARTS_KEPT)
    assert count >= 5 and kept == count, f"{count - kept} of {count} charts were rebuilt in new elements"
    _no_exception(page)
    assert not page.locator('[data-testid="stStatusWidget"]').is_visible()  # only our own Stop
    page.screenshot(path=str(ARTIFACTS / "explore_training.png"), full_page=True)
    text = page.locator('[data-testid="stProgress"]').inner_text()
    assert "steps/s" in text
    page.wait_for_timeout(1500)  # the full-page screenshot above keeps the renderer busy for a moment
    page.evaluate(RECORD_MOUSEDOWN)
    t0 = time.perf_counter()
    _press(page, page.locator(".st-key-btn_stop").get_by_role("button", name="Stop"))
    status = next((tmp / "runs").iterdir()) / "status.json"
    while json.loads(status.read_text())["status"] != "stopped":  # the worker saved it stopped
        assert time.perf_counter() - t0 < 30
        page.wait_for_timeout(20)
    took_effect = time.perf_counter() - t0
    saved_at = time.time()
    page.get_by_text("Stopped:").wait_for(timeout=10_000)
    banner_at = time.time()
    down = page.evaluate("() => window.__mousedown") / 1000  # when the click reached the page
    print(f"Stop: from the mousedown to the run saved as stopped {saved_at - down:.3f} s, to the Stopped "
          f"banner {banner_at - down:.3f} s (the test's click call itself took {took_effect - (saved_at - down):.3f} s "
          "to reach the busy page)")
    _no_exception(page)
    stopped = page.locator('[data-testid="stProgress"]').inner_text()
    page.wait_for_function(LATEST_DRAWN, timeout=10_000)  # every chart shows the stopped run's last figure
    page.wait_for_timeout(2500)  # a few poll intervals: nothing may train any more
    assert page.locator('[data-testid="stProgress"]').inner_text() == stopped
    assert page.locator(".st-key-btn_resume").get_by_role("button", name="Resume").is_enabled()
    page.screenshot(path=str(ARTIFACTS / "explore_stopped.png"), full_page=True)
    # the address bar follows every change at once, not one change behind
    page.locator(".st-key-w_cell").click()
    page.get_by_role("option", name="gru").click()
    page.wait_for_function("() => location.search.includes('cell=gru')", timeout=10_000)
    _no_exception(page)
    # narrow windows: button labels are not cut to "T…"
    for width, height in ((1280, 720), (700, 900)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(600)
        assert page.evaluate(LABELS_FIT), f"a button label is truncated at {width} px"
        page.screenshot(path=str(ARTIFACTS / f"explore_{width}px.png"), full_page=False)
    # the run was saved as it went, and the stop left it resumable
    runs = list((tmp / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "checkpoint.json").is_file()


HOSTILE = "**bold** [click here to log in](http://example.com/phish) :red[RED] ![img](http://127.0.0.1:9/x.png) $x^2$"


CHART_STATES = """() => Array.from(document.querySelectorAll('.bptt-chart'), d => ({
    inSight: d.__inSight !== false, latest: !!d.__want && d.__drawn === d.__want.spec + '\\u0000' + d.__want.config,
    draws: d.__draws || 0}))"""


def test_a_chart_out_of_sight_waits_and_draws_its_latest_figure_in_view(browser, server):
    """On a short window the lower charts are out of sight: while the run trains they are not
    redrawn (the page spends its budget on what can be seen), and scrolled into view each one
    draws the latest figure at once."""
    url, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 700})
    page.goto(url + "/?seq_len=50&steps=20000", timeout=30_000)
    page.wait_for_function(CHART_FRAMES, timeout=60_000)
    page.get_by_text("Estimate:").wait_for(timeout=60_000)
    _press(page, page.locator(".st-key-btn_train").get_by_role("button", name="Train"))
    page.wait_for_function(HEATMAP_FILLED, timeout=15_000, polling=20)
    page.wait_for_timeout(4000)  # a few polls, each with new figures for every chart
    states = page.evaluate(CHART_STATES)
    hidden = [k for k, c in enumerate(states) if not c["inSight"]]
    assert hidden, f"every chart is in sight on a 700 px window: {states}"
    assert all(states[k]["draws"] == 1 for k in hidden)  # the first frame, then nothing while out of sight
    assert max(c["draws"] for c in states if c["inSight"]) > 1  # the heatmap at the top is redrawn
    _press(page, page.locator(".st-key-btn_stop").get_by_role("button", name="Stop"))
    page.get_by_text("Stopped:").wait_for(timeout=15_000)
    for k in hidden:  # each comes into view and shows the stopped run's last figure
        page.evaluate(f"() => document.querySelectorAll('.bptt-chart')[{k}].scrollIntoView()")
        page.wait_for_function(f"() => ({CHART_STATES})()[{k}].latest", timeout=10_000)
    _no_exception(page)
    page.close()


def test_link_values_are_shown_as_text_not_markup(browser, server):
    url, _ = server
    import urllib.parse

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    fetched = []
    page.on("request", lambda r: fetched.append(r.url) if "127.0.0.1:9/" in r.url else None)
    query = urllib.parse.urlencode({"cell": HOSTILE, "task": "x" * 10_000})
    page.goto(f"{url}/?{query}", timeout=30_000)
    warning = page.locator('[data-testid="stAlert"]').filter(has_text="ignored").first
    warning.wait_for(timeout=60_000)
    html = warning.inner_html()
    assert warning.locator("a[href*='example.com'], img, strong, .katex").count() == 0, html
    assert "x" * 200 not in warning.inner_text()  # a 10,000-character value is not echoed in full
    page.wait_for_timeout(500)
    assert not fetched, fetched
    _no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "explore_hostile_link.png"), full_page=False)


def test_every_page_renders_without_an_exception(browser, server):
    """Explore, Compare (live and from saved runs) and Runs, each opened directly; a screenshot of each."""
    url, tmp = server
    from rnn_core import make_config
    from rnn_core.trainer import Trainer

    for name, cell in (("saved-rnn", "rnn"), ("saved-lstm", "lstm")):
        Trainer(make_config(cell=cell, steps=30, seq_len=20, hidden_size=8), out_dir=tmp / "runs" / name).run()
    pages = [("explore", "/", "Explore: gradients through time"),
             ("compare", "/compare?seq_len=20&a.cell=lstm", "What differs"),
             ("compare_saved", "/compare?runs=saved-rnn,saved-lstm", "saved-lstm"),
             ("runs", "/runs", "Runs: every saved run")]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    for shot, path, text in pages:
        page.goto(url + path, timeout=60_000)
        page.get_by_text(text).first.wait_for(timeout=60_000)
        page.wait_for_timeout(2500)  # let the charts draw
        _no_exception(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"page_{shot}.png"), full_page=True)
    # the page menu names the pages by their titles (not the files in pages/)
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Explore" in nav and "Compare" in nav and "Runs" in nav and "streamlit app" not in nav.lower()


def test_lessons_present_mode_arrow_keys(browser, server):
    """A lesson link in presenter mode: no sidebar, big chart text, and ArrowRight presses Next."""
    url, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url + "/lessons?lesson=vanishing&step=1&present=1", timeout=60_000)
    page.get_by_text("Step 1 of 3").wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 1", timeout=60_000)
    _no_exception(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.count() == 0 or not sidebar.first.is_visible()
    assert not page.locator('[data-testid="stExpandSidebarButton"]').is_visible()
    # predict, train the step (200 steps of a small RNN), read the answer
    page.get_by_text("yes", exact=True).click()
    train = page.locator(".st-key-les_train").get_by_role("button", name="Train")
    page.wait_for_function("() => !document.querySelector('.st-key-les_train button').disabled", timeout=30_000)
    _press(page, train)
    page.get_by_text("You predicted").wait_for(timeout=90_000)
    page.wait_for_function("""() => document.querySelectorAll('.js-plotly-plot .xtick text').length > 0""",
                           timeout=30_000)
    labels = page.evaluate("""() => Array.from(document.querySelectorAll(
        '.js-plotly-plot .xtick text, .js-plotly-plot .ytick text, .js-plotly-plot .xtitle, .js-plotly-plot .ytitle'))
        .map(t => [t.textContent, parseFloat(t.style.fontSize || getComputedStyle(t).fontSize)])""")
    # plotly draws a log axis's in-between labels (2, 5 between two decades) at 3/4 of the tick size
    sizes = [px for text, px in labels if not (text.strip() in "23456789" and px == 0.75 * 18)]
    assert sizes and min(sizes) >= 18, labels  # the back of a room reads the axes
    widths = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot .scatterlayer path.js-line'))
        .map(p => parseFloat(p.style.strokeWidth || getComputedStyle(p).strokeWidth))""")
    assert widths and min(widths) >= 3, widths
    _no_exception(page)
    page.screenshot(path=str(ARTIFACTS / "lessons_present_step1.png"), full_page=False)
    page.wait_for_timeout(500)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")  # not in an input (the radio)
    page.keyboard.press("ArrowRight")
    page.get_by_text("Step 2 of 3").wait_for(timeout=30_000)
    page.wait_for_function("() => location.search.includes('step=2')", timeout=10_000)
    assert "present=1" in page.evaluate("() => location.search")
    # an arrow key typed into an input moves the caret, not the lesson
    page.wait_for_timeout(1000)
    page.evaluate("""() => { const i = document.createElement('input'); i.id = 'typing-probe';
                             document.body.appendChild(i); i.focus(); }""")
    page.keyboard.press("ArrowLeft")
    page.wait_for_timeout(1500)
    assert page.get_by_text("Step 2 of 3").is_visible() and "step=2" in page.evaluate("() => location.search")
    page.evaluate("() => document.getElementById('typing-probe').remove()")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("ArrowLeft")
    page.get_by_text("Step 1 of 3").wait_for(timeout=30_000)
    page.keyboard.press("ArrowRight")
    page.get_by_text("Step 2 of 3").wait_for(timeout=30_000)
    page.wait_for_timeout(1500)  # let the chart draw
    _no_exception(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lessons_present.png"), full_page=False)


MAP_SPEC = """
seeds = [0]
[base]
task = "adding"
steps = 20
hidden_size = 8
[grid]
init_gain = [0.5, 1.0]
seq_len = [5, 8]
"""
# the sweep map's plot: the one whose traces include a heatmap
SWEEP_MAP = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).find(
    g => (g.data || []).some(t => t.type === 'heatmap'))"""
# the page position of a point inside the map's cell (x label, y label), as fractions of the cell from its centre
CELL_POINT = """([xl, yl, fx, fy]) => { const g = (""" + SWEEP_MAP + """)(), L = g._fullLayout, r = g.getBoundingClientRect();
    const xa = L.xaxis, ya = L.yaxis;  // by category index: d2p reads a numeric label such as "5" as an index
    const cx = xa.l2p(xa._categories.indexOf(xl)), cy = ya.l2p(ya._categories.indexOf(yl));
    const w = Math.abs(xa.l2p(1) - xa.l2p(0)), h = Math.abs(ya.l2p(1) - ya.l2p(0));
    return [r.left + xa._offset + cx + fx * w, r.top + ya._offset + cy + fy * h]; }"""


def test_sweep_map_cell_click_lists_its_runs(browser, server):
    """A tiny finished 2×2 sweep opened on Sweeps: one click inside a cell (off its centre) lists
    that cell's run, linked to Explore."""
    url, tmp = server
    from rnn_core import cli

    spec = tmp / "map.toml"
    spec.write_text(MAP_SPEC)
    assert cli.main(["sweep", str(spec), "--out", str(tmp / "runs" / "tiny"), "--workers", "1", "--quiet"]) == 0
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(url + "/sweeps", timeout=60_000)
    page.get_by_text("Sweeps: where does training work?").first.wait_for(timeout=60_000)
    _press(page, page.locator(".st-key-sweep_open").get_by_role("button", name="Open"))
    page.wait_for_function("() => !!(" + SWEEP_MAP + ")()", timeout=60_000)
    page.get_by_text("4 of 4 runs done").wait_for(timeout=30_000)
    page.wait_for_timeout(1500)  # let the chart settle
    _no_exception(page)
    x, y = page.evaluate(CELL_POINT, ["1", "8", 0.3, -0.3])  # init_gain 1, seq_len 8: up and right of centre
    page.mouse.click(x, y)
    link = page.locator('a[href="/?run=tiny-p0003-s0"]')
    link.wait_for(timeout=30_000)
    assert page.locator("strong").filter(has_text="init_gain = 1, seq_len = 8").is_visible()  # the cell's heading
    assert page.locator('a[href^="/?run=tiny-"]').count() == 1  # that cell's run only
    _no_exception(page)
    ARTIFACTS.mkdir(exist_ok=True)
    link.scroll_into_view_if_needed()  # the app scrolls inside its own container: show the map's lower half and the links
    page.screenshot(path=str(ARTIFACTS / "page_sweeps.png"))


# (screenshot name, link, the page's own title); each of the first FRESH is a fresh server's first request
DIRECT_LINKS = [("sweeps", "/sweeps", "Sweeps: where does training work?"),
                ("lessons_step", "/lessons?lesson=vanishing&step=1", "Vanishing gradients in a tanh RNN"),
                ("class", "/class", "Class room"),
                ("runs", "/runs", "Runs: every saved run"),
                ("explore", "/", "Explore: gradients through time"),
                ("compare", "/compare", "Compare: mitigations side by side"),
                ("theory", "/theory", "Theory: why gradients vanish or explode"),
                ("lessons", "/lessons", "Lessons: predict, observe, explain")]
NO_SKELETON = """() => !document.querySelector('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"]')"""
FRESH = 4  # the others are opened after the last fresh one, on its server


def test_every_page_by_its_own_link_on_a_fresh_server(browser, tmp_path):
    """Streamlit picks its pages-folder mode on a server's first request: a page's own link as that
    request must still get the app's navigation (not a menu of file names), its page and no exception."""
    def check(page, url, shot, path, title):
        page.goto(url + path, timeout=60_000)
        page.get_by_text(title, exact=True).first.wait_for(timeout=60_000)
        page.wait_for_function(NO_SKELETON, timeout=60_000)  # the page's run has drawn every element
        page.wait_for_timeout(1000)
        nav = page.locator('[data-testid="stSidebarNav"]')
        nav.wait_for(timeout=30_000)
        text = nav.inner_text()
        assert "Explore" in text and "Lessons" in text and "streamlit app" not in text.lower(), (path, text)
        assert page.get_by_text(title, exact=True).first.is_visible(), path
        _no_exception(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"direct_{shot}.png"))

    for i, (shot, path, title) in enumerate(DIRECT_LINKS[:FRESH]):
        with _serve(tmp_path, f"server{i}.log") as url:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            check(page, url, shot, path, title)
            if i == FRESH - 1:
                for rest in DIRECT_LINKS[FRESH:]:
                    check(page, url, *rest)
            page.close()
