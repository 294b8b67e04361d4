"""The script gate: page scripts take turns, a turn always ends, and a late turn runs anyway."""
from __future__ import annotations

import threading

import pytest

from dashboard import script_gate


def test_turns_exclude_each_other():
    inside, second_in, leave = threading.Event(), threading.Event(), threading.Event()

    def first():
        with script_gate.turn():
            inside.set()
            leave.wait(10)

    def second():
        with script_gate.turn():
            second_in.set()

    a = threading.Thread(target=first)
    a.start()
    assert inside.wait(10)
    b = threading.Thread(target=second)
    b.start()
    assert not second_in.wait(0.3)  # the first script still has its turn
    leave.set()
    assert second_in.wait(10)  # and the second gets one as soon as it ends
    a.join(10), b.join(10)


def test_a_turn_ends_when_its_script_raises():
    """st.rerun and st.stop end a script with an exception: the turn must end with it."""
    with pytest.raises(RuntimeError):
        with script_gate.turn():
            raise RuntimeError("rerun")
    assert script_gate._gate.acquire(blocking=False)  # the gate is free again
    script_gate._gate.release()


def test_a_turn_that_does_not_come_runs_anyway(monkeypatch):
    """A script stuck in its turn (a slow disk, say) holds the others back for GATE_WAIT_S at most."""
    monkeypatch.setattr(script_gate, "GATE_WAIT_S", 0.2)
    leave, ran = threading.Event(), threading.Event()

    def stuck():
        with script_gate.turn():
            leave.wait(10)

    t = threading.Thread(target=stuck)
    t.start()
    while script_gate._gate.acquire(blocking=False):  # wait until the stuck script holds the turn
        script_gate._gate.release()
    with script_gate.turn():
        ran.set()
    assert ran.is_set()
    leave.set()
    t.join(10)
    with script_gate.turn():  # the late script gave back nothing it did not take: the gate still works
        pass
    assert script_gate._gate.acquire(blocking=False)
    script_gate._gate.release()
