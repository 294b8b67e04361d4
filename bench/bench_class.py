"""A whole class on one server: N browser sessions open one link and press Train in the same second.

    python bench/bench_class.py                      # 30 sessions on a lesson's link (the default)
    python bench/bench_class.py --path "/?steps=300" # the same on Explore's link
    python bench/bench_class.py --client chromium    # the same with 30 Chromium tabs on this machine
    python bench/bench_class.py --sessions 4 --quick # a smoke run of the script itself

It serves the app on 127.0.0.1 (its own run store in a temporary folder, the process pool as
users get it) and opens N Streamlit sessions, waits until every one is ready, then presses Train
on all of them at once. A session is either
  - `--client ws` (the default): Streamlit's own websocket protocol, driven as the frontend drives
    it (bench/class_ws.py). The students' browsers are on their own laptops, so this measures the
    server as a class meets it; the clients' CPU is a few percent of a core;
  - `--client chromium`: N headless Chromium pages in N browser contexts on this same machine, so
    the figures include 30 tabs' drawing on the server's cores.
Per session it records, from the click (the page's own mousedown time stamp in Chromium, the
moment the click's message is sent over the websocket):
  - the first feedback: the first step drawn (status line and charts) or a queue position ("Queued: 3rd in line");
  - the end: "Finished";
  - every queue position the page showed.
Server memory (the RSS of the server and its training workers, one process group) is read
before the load, at its peak, and 60 s after every tab closed. At the end every run folder is
checked: status finished and its files readable. With `--client chromium` the browsers share
the machine's cores with the server, so on a 2-core machine those figures include their drawing.

It is bounded: at most --sessions pages, every wait has a timeout, and the server and browser
are always stopped.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RECORD_MOUSEDOWN = """() => document.addEventListener('mousedown',
    e => { window.__mousedown = performance.timeOrigin + e.timeStamp; }, {capture: true, once: true})"""
# "12 / 300 steps · ..." with at least one step: the status line is drawn in the same fragment run as
# the charts that hold those steps (a page may show charts before the click: a lesson's frames)
STEPS_DRAWN = r"""() => /(^|\s)([1-9]\d*) \/ \d+ steps ·/.test(document.body.innerText)"""
QUEUED = re.compile(r"Queued: (\d+)\w\w in line")
STEPS = re.compile(r"([1-9]\d*) / \d+ steps ·")  # the progress bar's text with at least one step


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in the server's process group (server + workers), MB."""
    total_kb = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            with open(f"/proc/{pid}/status") as f:
                total_kb += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError):
            continue
    return total_kb / 1024


def start_server(runs: Path, port: int, log: Path, env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "BPTT_LAB_RUNS": str(runs), "BPTT_LAB_POOL": "process", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("streamlit did not become healthy in 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=10)
            return
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue


class Session:
    def __init__(self, index: int):
        self.index = index
        self.first_s: float | None = None  # mousedown -> chart or queue position
        self.first_kind = ""
        self.done_s: float | None = None  # mousedown -> Finished
        self.positions: set[int] = set()
        self.exceptions = 0
        self.error = ""
        self.clicked: float | None = None  # the click's wall time (websocket client)


async def open_session(browser, url: str, s: Session, timeout_ms: int):
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(url, timeout=timeout_ms)
    train = page.get_by_role("button", name="Train", exact=True).first
    await train.wait_for(state="visible", timeout=timeout_ms)
    if "/lessons" in url:  # a lesson asks for a prediction first: Train waits for a choice
        choice = page.locator('[data-testid="stRadio"] [role="radiogroup"] label').first
        await choice.wait_for(timeout=timeout_ms)
        await choice.click()
    else:
        await page.get_by_text("Estimate:").first.wait_for(timeout=timeout_ms)  # the page's run is done
    deadline = time.monotonic() + timeout_ms / 1000
    while not await train.is_enabled():
        if time.monotonic() > deadline:
            raise TimeoutError("Train stayed disabled")
        await asyncio.sleep(0.1)
    await page.evaluate(RECORD_MOUSEDOWN)
    return context, page, train


async def press(page, train, s: Session) -> None:
    """One page's click; a page too starved to find its button in time is one failed session,
    reported with the others, not the end of the whole benchmark."""
    try:
        box = await train.bounding_box()
        await page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    except Exception as err:  # noqa: BLE001 - playwright's timeouts and closed pages alike
        s.error = f"could not press Train: {type(err).__name__}"


async def watch(page, s: Session, timeout_s: float) -> None:
    """Poll the page every 50 ms: first feedback, queue positions, the end."""
    if s.error:  # never pressed
        return
    clicked = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = time.time()
        if clicked is None:
            clicked = await page.evaluate("() => window.__mousedown || null")
        text = await page.locator('[data-testid="stAlert"]').all_inner_texts()
        for t in text:
            m = QUEUED.search(t)
            if m:
                s.positions.add(int(m.group(1)))
        if clicked and s.first_s is None:
            if s.positions:
                s.first_s, s.first_kind = now - clicked / 1000, "queued"
            elif await page.evaluate(STEPS_DRAWN):
                s.first_s, s.first_kind = now - clicked / 1000, "chart"
        if clicked and any("Finished" in t for t in text):
            s.done_s = now - clicked / 1000
            break
        await asyncio.sleep(0.05)
    s.exceptions = await page.locator('[data-testid="stException"]').count()
    if s.done_s is None:
        s.error = "did not finish in time"


async def open_ws(port: int, path: str, s: Session, timeout_s: float):
    """One websocket session, ready to train: the page drawn, a lesson's prediction picked, Train enabled."""
    from class_ws import WsPage

    page = WsPage(port, path)
    await page.open(timeout_s)
    if "lessons" in page.page and not page.choose("Predict"):
        raise RuntimeError("the lesson page drew no prediction to pick")
    await page.rerun(timeout_s=timeout_s)
    train = page.buttons.get("Train")
    if train is None or train[1]:
        raise RuntimeError(f"Train is {'disabled' if train else 'missing'} on {path}")

    def seen(kind: str, text: str, at: float) -> None:
        if s.clicked is None:
            return
        m = QUEUED.search(text)
        if m:
            s.positions.add(int(m.group(1)))
        if s.first_s is None and (m or (kind == "progress" and STEPS.match(text))):
            s.first_s, s.first_kind = at - s.clicked, "queued" if m else "chart"
        if kind == "alert" and text.startswith("Finished") and s.done_s is None:
            s.done_s = at - s.clicked

    page.on_text = seen
    return page


async def press_ws(page, s: Session) -> None:
    s.clicked = time.time()
    await page.rerun(trigger=page.buttons["Train"][0])


async def watch_ws(page, s: Session, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while s.done_s is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    s.exceptions = page.exceptions
    if s.done_s is None:
        s.error = "did not finish in time"


def check_runs(runs: Path) -> tuple[int, int, list[str]]:
    from rnn_core.view import RunView

    finished, bad = 0, []
    dirs = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith("_")] if runs.exists() else []
    for d in dirs:
        try:
            view = RunView.from_disk(d)
            if view.state == "finished":
                finished += 1
            else:
                bad.append(f"{d.name}: {view.state}")
        except Exception as err:  # a run that does not read is exactly what this bench looks for
            bad.append(f"{d.name}: {err}")
    return len(dirs), finished, bad


def describe(values: list[float]) -> str:
    if not values:
        return "—"
    return f"median {statistics.median(values):.2f} s, worst {max(values):.2f} s"


async def main_async(args) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench_class_"))
    runs, port = tmp / "runs", free_port()
    proc = start_server(runs, port, tmp / "server.log")
    url = f"http://127.0.0.1:{port}{args.path}"
    sessions = [Session(i) for i in range(args.sessions)]
    mem = {}
    try:
        cpu0, wall0 = time.process_time(), time.monotonic()
        if args.client == "ws":
            await load_ws(args, port, proc, sessions, mem)
        else:
            await load_chromium(args, url, proc, sessions, mem)
        mem["client_cpu_s"], mem["load_wall_s"] = time.process_time() - cpu0, time.monotonic() - wall0
        closed_at = time.monotonic()
        while time.monotonic() - closed_at < args.settle:
            await asyncio.sleep(1)
        mem["after"] = group_rss_mb(proc.pid)
    finally:
        stop_server(proc)
    return report(args, url, runs, sessions, mem)


async def load_ws(args, port: int, proc, sessions: list[Session], mem: dict) -> None:
    warm = await open_ws(port, args.path, Session(-1), 90)  # the first page run starts the training workers
    await warm.close()
    await asyncio.sleep(2)
    mem["before"] = group_rss_mb(proc.pid)
    pages = await asyncio.gather(*(open_ws(port, args.path, s, 120) for s in sessions))
    await asyncio.sleep(1.0)
    peak = [group_rss_mb(proc.pid)]
    sampler = asyncio.create_task(sample_rss(proc.pid, peak))
    await asyncio.gather(*(press_ws(page, s) for page, s in zip(pages, sessions)))
    await asyncio.gather(*(watch_ws(page, s, args.timeout) for page, s in zip(pages, sessions)))
    sampler.cancel()
    mem["peak"] = max(peak)
    for page in pages:
        await page.close()


async def sample_rss(pgid: int, peak: list[float]) -> None:
    while True:
        peak.append(group_rss_mb(pgid))
        await asyncio.sleep(0.5)


async def load_chromium(args, url: str, proc, sessions: list[Session], mem: dict) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            # warm the server once (the first page run starts the training workers)
            ctx0, _, _ = await open_session(browser, url, Session(-1), 90_000)
            await ctx0.close()
            await asyncio.sleep(2)
            mem["before"] = group_rss_mb(proc.pid)
            opened = await asyncio.gather(*(open_session(browser, url, s, 120_000) for s in sessions))
            await asyncio.sleep(1.0)  # every page has settled
            peak = [group_rss_mb(proc.pid)]
            sampler = asyncio.create_task(sample_rss(proc.pid, peak))
            await asyncio.gather(*(press(page, train, s) for (_, page, train), s in zip(opened, sessions)))
            await asyncio.gather(*(watch(page, s, args.timeout) for (_, page, _), s in zip(opened, sessions)))
            sampler.cancel()
            mem["peak"] = max(peak)
            for ctx, _, _ in opened:
                await ctx.close()
        finally:
            await browser.close()


def report(args, url: str, runs: Path, sessions: list[Session], mem: dict) -> int:
    total, finished, bad = check_runs(runs)
    firsts = [s.first_s for s in sessions if s.first_s is not None]
    dones = [s.done_s for s in sessions if s.done_s is not None]
    positions = sorted(set().union(*(s.positions for s in sessions)))
    where = ("websocket clients (no browser drawing on this machine)" if args.client == "ws"
             else "Chromium tabs sharing this machine's cores with the server")
    print(f"sessions: {len(sessions)} {where}, on {url.split('?')[0]} (path {args.path})")
    print(f"first chart or queue position: {describe(firsts)}; "
          f"within 2 s: {sum(f <= 2.0 for f in firsts)}/{len(sessions)}; "
          f"kinds: {sum(s.first_kind == 'chart' for s in sessions)} chart, {sum(s.first_kind == 'queued' for s in sessions)} queued")
    print(f"finished: {describe(dones)}; {len(dones)}/{len(sessions)} pages showed Finished")
    print(f"queue positions shown: {positions[:3]}…{positions[-3:]} ({len(positions)} distinct)" if positions
          else "queue positions shown: none")
    print(f"server memory (server + workers): before {mem.get('before', 0):.0f} MB, peak {mem.get('peak', 0):.0f} MB, "
          f"{args.settle:.0f} s after every tab closed {mem.get('after', 0):.0f} MB "
          f"({100 * (mem.get('after', 0) / max(mem.get('before', 1), 1) - 1):+.1f}% of before)")
    print(f"this script's own CPU (the clients; Chromium's is not counted): {mem.get('client_cpu_s', 0):.1f} s "
          f"over {mem.get('load_wall_s', 0):.1f} s of load")
    print(f"runs saved: {total}, finished and readable: {finished}" + (f"; problems: {bad}" if bad else ""))
    print(f"exception elements: {sum(s.exceptions for s in sessions)}")
    errors = [f"session {s.index}: {s.error}" for s in sessions if s.error]
    for e in errors:
        print(e)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "sessions": len(sessions), "first_s": firsts, "done_s": dones, "positions": positions,
            "memory_mb": mem, "runs": total, "finished": finished, "problems": bad}, indent=1))
    return 0 if not errors and finished == len(sessions) and not bad else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=30, help="browser sessions (at most 60)")
    ap.add_argument("--path", default="/lessons?lesson=vanishing&step=1", help="the link every session opens")
    ap.add_argument("--client", choices=["ws", "chromium"], default="ws",
                    help="ws: Streamlit's websocket protocol, no browser here; chromium: headless tabs on this machine")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds each session may take to finish")
    ap.add_argument("--settle", type=float, default=60.0, help="seconds after the tabs close before memory is read")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 10 s settle")
    ap.add_argument("--json", default="", help="also write the figures to this file")
    args = ap.parse_args()
    if not 1 <= args.sessions <= 60:
        ap.error("--sessions must be 1..60")
    if args.quick:
        args.settle = 10.0
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
