"""Page scripts take turns: at most GATE_RUNS of them run at once in one server process.

Streamlit runs each session's script in its own thread, and every thread shares one interpreter
lock with the event loop that sends the pages their messages. When a class clicks Train in the
same second, thirty script threads run at once. Each message a script draws is handed to the
event loop, which must win the lock back from thirty busy threads for every socket write, so
it sent almost nothing until the last script ended: every student got the answer to the click
at the same moment, about 1.9 s after it (bench/bench_class.py, 30 websocket sessions), even
the first in line.

Taking turns costs a script nothing it would not lose to the others anyway, and the event loop
then competes with one script, not thirty: each session's messages leave during its own turn.
In the same benchmark the first students had their queue position in under half a second and
the last in 1.4 s, where every one had waited 2.3-2.7 s before. A turn that does not come within GATE_WAIT_S (a page stuck on a slow disk, say) runs
anyway: the gate orders the work, it never holds a page back for good.

Only whole-page runs take turns; a fragment's poll runs at once (it is short, and waits for
nothing here). Widget callbacks run before the script, outside the gate.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

GATE_RUNS = 1  # one script at a time: each extra one is a thread the event loop must out-wait
GATE_WAIT_S = 10.0  # the longest a page waits for its turn before it runs regardless

_gate = threading.BoundedSemaphore(GATE_RUNS)


@contextmanager
def turn() -> Iterator[None]:
    got = _gate.acquire(timeout=GATE_WAIT_S)
    try:
        yield
    finally:
        if got:
            _gate.release()
