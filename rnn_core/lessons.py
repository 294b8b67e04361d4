"""Lessons: prepared experiments with a question (predict, observe, explain), one TOML file each.

    lessons/vanishing.toml
      title, text            what the lesson is about (text: at most TEXT_WORDS words)
      base                   config keys every step starts from (a table of RunConfig keys)
      locked, hidden         keys the class may not change / does not see
      [[steps]]              one or more: text, chart, and either config (one run) or 2-4
                             [[steps.compare]] (label + config, drawn as on Compare)
      [steps.question]       text, metric, choices: asked before the run, answered from its numbers

Adding a lesson needs no code: `load_lessons()` reads every file of the folder. Every config is
checked against the config schema (rnn_core.config.make_config), so a lesson that would not run
is refused when it is read, in one line naming the file, the step and the key. The answer is never
in the file: rnn_core.lesson_answers computes it from the finished run. No torch here.
"""
from __future__ import annotations

import functools
import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import ConfigError, RunConfig, make_config
from .rules import show

LESSONS_DIR = Path(__file__).resolve().parents[1] / "lessons"
TEXT_WORDS = 150  # a lesson's text: read aloud in about a minute
STEP_WORDS = 90  # a step's text: what to do and what to look at
QUESTION_WORDS = 40  # a question is one sentence
LABEL_CHARS = 40  # a choice or a compared config: fits a radio button / a column header

# The charts a step can point at: the names dashboard.run_figures.build_figures returns for one run,
# and dashboard.compare_figures.build_comparison's for a comparison (per column: heatmap, gates).
RUN_CHARTS = ("heatmap", "profile", "gates", "attention", "clipping", "loss", "accuracy")
COMPARE_CHARTS = ("heatmap", "profile", "loss", "norms", "gates")
CLASSIFICATION = ("digits", "temporal_order")  # the tasks with an accuracy chart (run_figures.CHANCE)

Metric = Literal["memory_horizon", "log10_ratio", "final_val_loss", "beat_baseline", "outcome", "best"]
NUMERIC = ("memory_horizon", "log10_ratio", "final_val_loss")  # choices are ranges [min, max)
OUTCOMES = ("solved", "stuck at baseline", "diverged", "still learning")  # rnn_core.summary.OUTCOMES
BEST_BY = {"final_val_loss": "lowest final validation loss", "memory_horizon": "longest memory horizon"}


class LessonError(ValueError):
    """A bad lesson file; its message is one line: the file, the step, the key and what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Strict):
    label: str = Field(min_length=1, max_length=LABEL_CHARS)
    min: float | None = None  # numeric metrics: this choice holds min <= value < max
    max: float | None = None
    value: bool | str | None = None  # beat_baseline: true/false; outcome: one of OUTCOMES


class Question(_Strict):
    text: str = Field(min_length=1)
    metric: Metric
    by: Literal["final_val_loss", "memory_horizon"] = "final_val_loss"  # metric = "best" only
    choices: list[Choice] = []  # metric = "best": left out, the compared configs' labels are the choices


class Variant(_Strict):
    label: str = Field(min_length=1, max_length=LABEL_CHARS)
    config: dict[str, Any] = {}


class Step(_Strict):
    text: str = Field(min_length=1)
    chart: str
    config: dict[str, Any] = {}  # on top of the lesson's base
    compare: list[Variant] = []  # 2-4 configs side by side, each on top of base + config
    save_as: str = ""  # train this step's run under this fixed name (a later step warm-starts from it)
    question: Question


class Lesson(_Strict):
    id: str
    order: int = 100  # place in the lesson list (then by id)
    title: str = Field(min_length=1, max_length=80)
    text: str = Field(min_length=1)
    base: dict[str, Any] = {}
    locked: list[str] = []
    hidden: list[str] = []
    steps: list[Step] = Field(min_length=1)

    def configs(self, index: int, values: dict[str, Any] | None = None) -> list[tuple[str, RunConfig]]:
        """(label, config) of every run of step `index` (0-based): one, or one per compared column.
        `values`: a student's sidebar values; locked and hidden keys and a column's own keys keep
        the lesson's. Raises ConfigError for a combination that does not fit."""
        step = self.steps[index]
        fixed = {**self.base, **step.config}
        mine = {k: v for k, v in (values or {}).items() if k not in self.locked and k not in self.hidden}
        shared = {**fixed, **mine}
        if not step.compare:
            return [("run", make_config(shared))]
        return [(v.label, make_config({**shared, **v.config})) for v in step.compare]

    def choices(self, index: int) -> list[str]:
        """The labels a student picks from at step `index`."""
        step = self.steps[index]
        if step.question.metric == "best" and not step.question.choices:
            return [v.label for v in step.compare]
        return [c.label for c in step.question.choices]


def words(text: str) -> int:
    return len(text.split())


def _where(step: int | None, key: str) -> str:
    return (f"step {step + 1}: " if step is not None else "") + key


def _check_keys(names: list[str], where: str) -> None:
    for name in names:
        if name not in RunConfig.model_fields:
            raise LessonError(f"{where}: '{show(name)}' is not a config key (see python -m rnn_core keys)")


def _check_question(q: Question, step: Step, k: int) -> None:
    where = _where(k, "question")
    if words(q.text) > QUESTION_WORDS:
        raise LessonError(f"{where}.text has {words(q.text)} words (at most {QUESTION_WORDS})")
    if q.metric == "best":
        if not step.compare:
            raise LessonError(f"{where}.metric='best' needs a comparison step ([[steps.compare]])")
        if q.choices and [c.label for c in q.choices] != [v.label for v in step.compare]:
            raise LessonError(f"{where}.choices: with metric='best' the choices are the compared labels; leave them out")
        return
    if step.compare:
        raise LessonError(f"{where}.metric='{q.metric}' reads one run; a comparison step asks metric='best'")
    if len(q.choices) < 2:
        raise LessonError(f"{where}.choices: give at least 2 choices")
    if q.metric in NUMERIC:
        # contiguous ranges from -inf to +inf: every value the run can give picks exactly one choice
        edges = [(c.min if c.min is not None else -math.inf, c.max if c.max is not None else math.inf)
                 for c in q.choices]
        if any(c.value is not None for c in q.choices):
            raise LessonError(f"{where}.choices: metric='{q.metric}' takes ranges (min, max), not value")
        if edges[0][0] != -math.inf or edges[-1][1] != math.inf:
            raise LessonError(f"{where}.choices: the first choice needs no min and the last no max, so every value fits one")
        for (lo, hi), (lo2, _) in zip(edges, edges[1:]):
            if hi != lo2:
                raise LessonError(f"{where}.choices: each choice's max must be the next one's min (got {hi:g} and {lo2:g})")
        if any(lo >= hi for lo, hi in edges):
            raise LessonError(f"{where}.choices: each range needs min < max")
        return
    if any(c.min is not None or c.max is not None for c in q.choices):
        raise LessonError(f"{where}.choices: metric='{q.metric}' takes value, not min/max")
    allowed: tuple = (True, False) if q.metric == "beat_baseline" else OUTCOMES
    given = [c.value for c in q.choices]
    bad = [v for v in given if v not in allowed or (q.metric == "beat_baseline") != isinstance(v, bool)]
    if bad:
        raise LessonError(f"{where}.choices: value={show(bad[0])} is not allowed (allowed: "
                          f"{', '.join(str(a).lower() if isinstance(a, bool) else a for a in allowed)})")
    if sorted(map(str, given)) != sorted(map(str, allowed)):
        raise LessonError(f"{where}.choices: give each of {', '.join(str(a).lower() for a in allowed)} exactly once")


def _check_config(lesson: Lesson, k: int) -> None:
    step = lesson.steps[k]
    for part, where in [(lesson.base, "base"), (step.config, _where(k, "config"))] + [
            (v.config, _where(k, f"compare '{v.label}'")) for v in step.compare]:
        _check_keys(list(part), where)
    try:
        lesson.configs(k)
    except ConfigError as err:
        raise LessonError(f"{_where(k, 'config')}: {err}") from None


def _check(lesson: Lesson) -> None:
    if words(lesson.text) > TEXT_WORDS:
        raise LessonError(f"text has {words(lesson.text)} words (at most {TEXT_WORDS})")
    _check_keys(lesson.locked, "locked")
    _check_keys(lesson.hidden, "hidden")
    names = [s.save_as for s in lesson.steps if s.save_as]
    for k, step in enumerate(lesson.steps):
        if words(step.text) > STEP_WORDS:
            raise LessonError(f"{_where(k, 'text')} has {words(step.text)} words (at most {STEP_WORDS})")
        if step.compare and not 2 <= len(step.compare) <= 4:
            raise LessonError(f"{_where(k, 'compare')}: give 2 to 4 configs (got {len(step.compare)})")
        if len({v.label for v in step.compare}) != len(step.compare):
            raise LessonError(f"{_where(k, 'compare')}: two configs have the same label")
        charts = COMPARE_CHARTS if step.compare else RUN_CHARTS
        if step.chart not in charts:
            raise LessonError(f"{_where(k, 'chart')}='{show(step.chart)}' is not a chart "
                              f"(allowed: {', '.join(charts)})")
        if step.save_as and step.compare:
            raise LessonError(f"{_where(k, 'save_as')}: a comparison step cannot save one named run")
        if step.save_as:
            from .rules import run_name_problem

            problem = run_name_problem(step.save_as)
            if problem:
                raise LessonError(f"{_where(k, 'save_as')}: {problem}")
        _check_config(lesson, k)
        for label, cfg in lesson.configs(k):
            missing = ("attention" if step.chart == "attention" and cfg.attention == "none" else
                       "accuracy" if step.chart == "accuracy" and cfg.task not in CLASSIFICATION else None)
            if missing:
                raise LessonError(f"{_where(k, 'chart')}='{missing}' is not drawn for this config "
                                  f"({'attention=none' if missing == 'attention' else 'task=' + cfg.task})")
        warm = {c.warm_start for _, c in lesson.configs(k)} - {""}
        for name in warm:
            if name in names and name not in [s.save_as for s in lesson.steps[:k]]:
                raise LessonError(f"{_where(k, 'config')}: warm_start='{show(name)}' is saved by a later step")
        _check_question(step.question, step, k)


def _pydantic_line(err: ValidationError) -> str:
    """The first problem as 'step N: key: message' (pydantic counts steps from 0, people from 1)."""
    e = err.errors()[0]
    loc = list(e["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        where, loc = f"step {loc[1] + 1}: ", loc[2:]
    key = ".".join(str(p) for p in loc) or "file"
    if e["type"] == "extra_forbidden":
        return f"{where}unknown key '{show(key)}'"
    if e["type"] == "missing":
        return f"{where}{key} is missing"
    return f"{where}{key}={show(e.get('input'))} is invalid ({e['msg']})"


def parse_lesson(text: str, lesson_id: str) -> Lesson:
    """A lesson from TOML text; raises LessonError (without the file name) when it is bad."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise LessonError(f"not valid TOML: {err}") from None
    if "id" in data:
        raise LessonError("unknown key 'id' (the id is the file name)")
    try:
        lesson = Lesson.model_validate({"id": lesson_id, **data})
    except ValidationError as err:
        raise LessonError(_pydantic_line(err)) from None
    _check(lesson)
    return lesson


def load_lesson(path: str | Path) -> Lesson:
    """One lesson file; a bad one raises LessonError in one line starting with the file's name.

    A file unchanged since it was last read (same size and modification time) is not parsed again:
    the Lessons page reads the folder on every script run, a whole class's clicks included, and
    parsing every file was about a seventh of a click's server time. Lessons are frozen models,
    so the cached one can be shared. An edited file is read afresh; a refused one (an exception)
    is never cached."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as err:
        raise LessonError(f"{path.name}: cannot be read ({err})") from None
    return _load_lesson(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=512)
def _load_lesson(name: str, mtime_ns: int, size: int) -> Lesson:
    path = Path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise LessonError(f"{path.name}: cannot be read ({err})") from None
    try:
        return parse_lesson(text, path.stem)
    except LessonError as err:
        raise LessonError(f"{path.name}: {err}") from None


def load_lessons(folder: str | Path | None = None) -> tuple[dict[str, Lesson], list[str]]:
    """Every lesson of the folder (by id, in file-name order) and one line per file that was refused."""
    folder = Path(folder) if folder is not None else LESSONS_DIR
    lessons, problems = {}, []
    for path in sorted(folder.glob("*.toml")):
        try:
            lessons[path.stem] = load_lesson(path)
        except LessonError as err:
            problems.append(str(err))
    return dict(sorted(lessons.items(), key=lambda kv: (kv[1].order, kv[0]))), problems
