"""One Streamlit session driven over the app's own websocket, as the browser's frontend drives it.

bench_class.py's default client. A class's browsers run on the students' laptops, not on the
server, so a load test that puts 30 Chromium tabs on the server's 2 cores measures the tabs
drawing, not the server. This client speaks Streamlit's protocol (the protobuf BackMsg and
ForwardMsg of the installed streamlit) to `/_stcore/stream`, the way the frontend does:
  - a script run is a BackMsg `rerun_script` with the page name, the link's query string and the
    widget states (a radio's state is its option's label; a button's is a one-shot trigger);
  - an `st.fragment(run_every=...)` poll is the frontend's job: the server sends `auto_rerun`
    (fragment id, interval) and the client asks for that fragment's rerun on that period, as the
    frontend's setInterval does (a tick is sent even while a run is under way);
  - the page's elements arrive as `delta` messages; the client reads the alerts and the progress
    bar's text, which is all the figures below need. It does not render anything.
So the figures are what the server gives a class: the time until the answer to the click is on
the wire back to the student, without a browser's drawing on the same cores.
"""
from __future__ import annotations

import asyncio
import time

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState



class WsPage:
    """One tab: its socket, its widgets as last drawn, its fragments' poll timers."""

    def __init__(self, port: int, path: str):
        page, _, query = path.lstrip("/").partition("?")
        self.url = f"ws://127.0.0.1:{port}/_stcore/stream"
        self.origin = f"http://127.0.0.1:{port}"
        self.page, self.query = page, query
        self.page_hash = ""  # the page's script hash, as st.navigation names it: later reruns send it
        self.ws = None
        self.widgets: dict[str, WidgetState] = {}  # id -> the state this tab sends with every rerun
        self.buttons: dict[str, tuple[str, bool]] = {}  # label -> (id, disabled), as last drawn
        self.radios: list[tuple[str, str, list[str]]] = []  # (id, label, options)
        self.timers: dict[str, float] = {}  # fragment id -> poll period, s
        self.finished = asyncio.Event()  # set when a run ends (not when it gives way to a rerun)
        self.on_text = None  # called with (kind, text, time) for each alert and progress text
        self.exceptions = 0
        self.trace: list[str] | None = None  # when a list: every new element's kind, in the order it came

    async def open(self, timeout_s: float) -> None:
        self.ws = await websockets.connect(self.url, subprotocols=["streamlit"], origin=self.origin,
                                           max_size=None, open_timeout=timeout_s)
        self._reader = asyncio.create_task(self._read())
        self._poller = asyncio.create_task(self._poll())
        await self.rerun(timeout_s=timeout_s)

    async def close(self) -> None:
        for task in (self._reader, self._poller):
            task.cancel()
        await self.ws.close()

    async def rerun(self, trigger: str = "", fragment_id: str = "", timeout_s: float | None = None) -> None:
        """Ask for a script run (or one fragment's), with every widget state; wait for its end if timeout_s."""
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string, state.page_name, state.page_script_hash = self.query, self.page, self.page_hash
        state.fragment_id, state.is_auto_rerun = fragment_id, bool(fragment_id)
        state.widget_states.widgets.extend(self.widgets.values())
        if trigger:
            state.widget_states.widgets.append(WidgetState(id=trigger, trigger_value=True))
        self.finished.clear()
        await self.ws.send(msg.SerializeToString())
        if timeout_s is not None:
            await asyncio.wait_for(self.finished.wait(), timeout_s)

    def choose(self, label_start: str, option: int = 0) -> bool:
        """Set the first radio whose label starts so to one of its options (sent with the next rerun)."""
        for wid, label, options in self.radios:
            if label.startswith(label_start) and options:
                self.widgets[wid] = WidgetState(id=wid, string_value=options[option])
                return True
        return False

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = ForwardMsg.FromString(raw)
            kind = msg.WhichOneof("type")
            if kind == "navigation":  # st.navigation names the page this run drew
                self.page_hash = msg.navigation.page_script_hash
            if kind == "new_session" and not msg.metadata.run.fragment_ids:
                self.timers.clear()  # a full run starts: the frontend drops its poll timers
                self.radios.clear()
            elif kind == "auto_rerun":
                self.timers[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
            elif kind == "stop_auto_rerun":
                for fid in msg.stop_auto_rerun.fragment_ids:
                    self.timers.pop(fid, None)
            elif kind == "script_finished" and msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                self.finished.set()  # a run cut short by a rerun is not the end: the rerun's is
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                self._element(msg.delta.new_element)

    def _element(self, element) -> None:
        kind = element.WhichOneof("type")
        if self.trace is not None:
            self.trace.append(kind)
        if kind == "button":
            self.buttons[element.button.label] = (element.button.id, element.button.disabled)
        elif kind == "radio":
            self.radios.append((element.radio.id, element.radio.label, list(element.radio.options)))
        elif kind == "exception":
            self.exceptions += 1
        elif kind in ("alert", "progress") and self.on_text:
            self.on_text(kind, element.alert.body if kind == "alert" else element.progress.text, time.time())

    async def _poll(self) -> None:
        """The frontend's run_every timers: one tick per fragment per period; a known fragment keeps its phase."""
        last: dict[str, float] = {}
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            for fid, period in list(self.timers.items()):
                if now - last.setdefault(fid, now) >= period:
                    last[fid] = now
                    await self.rerun(fragment_id=fid)
