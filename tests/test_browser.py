"""The app in a real browser: serve it, open it in Chromium, click Train, time the first chart.

Skips cleanly where /usr/bin/chromium or the playwright package is missing. The server is a
subprocess on 127.0.0.1 with its own run store, and it is always killed.
"""
from __future__ import annotations

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
    if shutil.which("streamlit") is None and not (Path(sys.executable).parent / "streamlit").exists():
        pytest.skip("streamlit executable not found")
    port = _free_port()
    env = {**os.environ, "BPTT_LAB_RUNS": str(tmp_path / "runs")}
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(port, proc)
        yield f"http://127.0.0.1:{port}", tmp_path
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


def test_train_fills_charts_in_browser(server):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    url, tmp = server
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            # enough steps that the run cannot finish before the test clicks Stop (a default run takes ~8 s)
            page.goto(url + "/?seq_len=50&steps=20000", timeout=30_000)
            # the chart frames are drawn at page load, so plotly.js is in before the click
            page.wait_for_function(CHART_FRAMES, timeout=30_000)
            train = page.locator(".st-key-btn_train").get_by_role("button", name="Train")  # keyed widgets get an st-key-<key> class
            train.wait_for(state="visible", timeout=10_000)
            page.wait_for_timeout(500)  # let the first render settle
            t0 = time.perf_counter()
            train.click()
            page.wait_for_function(HEATMAP_FILLED, timeout=15_000, polling=20)
            first_chart_s = time.perf_counter() - t0
            print(f"\ntime from Train click to first filled chart: {first_chart_s:.3f} s")
            (ARTIFACTS).mkdir(exist_ok=True)
            (ARTIFACTS / "time_to_first_chart.txt").write_text(f"{first_chart_s:.3f}\n")
            # let it train for a moment: the progress bar and charts update on fragment ticks
            page.wait_for_timeout(2500)
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(ARTIFACTS / "explore_training.png"), full_page=True)
            text = page.locator('[data-testid="stProgress"]').inner_text()
            assert "steps/s" in text
            page.locator(".st-key-btn_stop").get_by_role("button", name="Stop").click()
            page.get_by_text("Stopped:").wait_for(timeout=5_000)
            assert page.locator('[data-testid="stException"]').count() == 0
            stopped = page.locator('[data-testid="stProgress"]').inner_text()
            page.wait_for_timeout(1200)  # a few tick intervals: nothing may train any more
            assert page.locator('[data-testid="stProgress"]').inner_text() == stopped
            assert page.locator(".st-key-btn_resume").get_by_role("button", name="Resume").is_enabled()
            page.screenshot(path=str(ARTIFACTS / "explore_stopped.png"), full_page=True)
        finally:
            browser.close()
    # the run was saved as it went, and the stop left it resumable
    runs = list((tmp / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "checkpoint.json").is_file()
