"""Training a lesson step through the server's training service, and reading its answer.

A step trains one run, or one per compared config, as Explore and Compare do (dashboard.jobs);
the page polls the jobs in a fragment and draws read-only views. A step with `save_as` trains
under that fixed run name, so a later step can warm-start from it (rnn_core.warmstart reads
the run store by name).
"""
from __future__ import annotations

import shutil

from rnn_core import store
from rnn_core.config import RunConfig
from rnn_core.lesson_answers import Answer, answer, run_numbers
from rnn_core.lessons import Lesson
from rnn_core.view import RunView

from . import jobs
from .lessons_state import LessonsState

FIRST_STEP_WAIT_S = 0.5  # Train waits this long for a first step, so the click's own run draws it
STOP_WAIT_S = 1.0  # Stop waits this long for the jobs to end
PAGE = "lesson"  # run names: lesson-<task>-<cell>-<time>


def missing_source(cfgs: list[RunConfig]) -> str | None:
    """The saved run a config warm-starts from, when the store does not have its weights yet."""
    for cfg in cfgs:
        if cfg.warm_start and not (store.run_dir(cfg.warm_start) / "model.safetensors").is_file():
            return cfg.warm_start
    return None


def _start_named(cfg: RunConfig, name: str) -> jobs.Job:
    """Train under a fixed name (a later step warm-starts from it): an older run of that name is replaced."""
    from .runs import live_runs

    if name in live_runs():
        raise jobs.ServiceError(f"the run {name} is training in another session: wait until it ends")
    path = store.run_dir(name)
    if path.exists():
        shutil.rmtree(path)  # a new run, not files of the old one beside it
    return jobs.service().submit(cfg, path, name, connected=jobs.session_connected())


def stop_all(ls: LessonsState, wait: bool = False) -> None:
    for job in ls.jobs:
        job.stop()
    if wait:
        for job in ls.jobs:
            job.wait(timeout=STOP_WAIT_S)


def on_train(ls: LessonsState, lesson: Lesson, runs: list[tuple[str, RunConfig]], choice: int | None) -> None:
    """Train the step's runs; the prediction picked before it is kept for the answer."""
    stop_all(ls)
    step = lesson.steps[ls.step]
    ls.predictions[(lesson.id, ls.step)] = choice
    ls.jobs, ls.labels, ls.cfgs = [], [label for label, _ in runs], [cfg for _, cfg in runs]
    ls.trained_for, ls.start_error = (lesson.id, ls.step), None
    for label, cfg in runs:
        try:
            job = _start_named(cfg, step.save_as) if step.save_as else jobs.start(cfg, page=PAGE)
        except (jobs.ServiceError, store.RunStoreError, OSError) as err:
            ls.start_error = f"Could not start{'' if label == 'run' else ' ' + label}: {err}"
            break
        ls.jobs.append(job)
    if ls.jobs:  # so the click's own run draws the first chart instead of the next poll
        ls.jobs[0].wait_first_step(FIRST_STEP_WAIT_S)


def on_stop(ls: LessonsState) -> None:
    stop_all(ls, wait=True)


def views(ls: LessonsState) -> list[RunView]:
    out = []
    for job in ls.jobs:
        job.poll()  # a job nobody polls for 30 s is stopped
        out.append(job.view())
    return out


def step_answer(lesson: Lesson, index: int, shown: list[RunView]) -> Answer:
    """The answer of step `index` from its finished runs' own numbers."""
    return answer(lesson.steps[index].question, [run_numbers(v) for v in shown], lesson.choices(index))
