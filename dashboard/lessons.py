"""The Lessons page: prepared experiments with a question, one step at a time.

A lesson (lessons/<id>.toml, read by rnn_core.lessons) walks a class through numbered steps:
read the step, predict the answer (a radio, before Train), train the step's run or comparison
through the training service, then read which choice the run's own numbers support, and why.
The step's chart comes first. `/lessons?lesson=ID&step=N` opens a step ready to run; with
`present=1` (dashboard.present) the sidebar is hidden, the charts are big, one step fills the
screen and the arrow keys press Back / Next (dashboard.lessons_keys).

Polling follows Explore's pattern (explore.live_panel): the buttons are outside the fragment,
so a click preempts a poll; the fragment ticks only while a job is queued or running.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from rnn_core.config import ConfigError, RunConfig, make_config
from rnn_core.lessons import Lesson, load_lessons
from rnn_core.view import RunView

from . import compare_figures as CF
from . import figures as F
from . import jobs, present, room_follow
from .compare_table import summary_rows
from .lessons_keys import arrow_keys
from .lessons_link import lesson_from_query, lesson_link, query_for
from .lessons_run import missing_source, on_stop, on_train, step_answer, stop_all, views
from .lessons_state import LessonsState, lessons_state
from .panel import chart_key, draw_chart, draw_status, frame
from .run_figures import build_figures
from .safe import code, plain
from .schema import defaults
from .widgets import VALUES, config_sidebar, read_query

PREFIX = "les_"  # every widget and chart key of this page: Explore's and Compare's never collide
BACK, NEXT = f"{PREFIX}back", f"{PREFIX}next"
LETTERS = "abcd"
CHART_NAMES = {"heatmap": "the ‖∂L/∂h_t‖ heatmap", "profile": "the latest gradient profile", "gates": "the gates",
               "attention": "the attention map", "clipping": "the clipping chart", "loss": "the loss",
               "accuracy": "the validation accuracy", "norms": "the gradient norms"}


# --- the link ----------------------------------------------------------------------------------
def read_link(ls: LessonsState, lessons: dict[str, Lesson]) -> None:
    """The lesson and step from the link: on the page's first run, and when the link is a new one.
    A link emptied by the navigation between pages keeps the session's lesson."""
    params = read_query()
    flat = {k: v[-1] for k, v in params.items() if v}
    if ls.last_query is not None and (not flat or flat == ls.last_query):
        return
    lesson, step, warning = lesson_from_query(params, lessons)
    if (lesson, step) != (ls.lesson, ls.step):
        stop_all(ls)
    ls.lesson, ls.step, ls.link_warning = lesson, step, warning
    ls.last_query = flat


def write_link(ls: LessonsState) -> None:
    wanted = query_for(ls.lesson, ls.step)
    ls.last_query = wanted
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


# --- moving between lessons and steps -------------------------------------------------------------
def go_to(ls: LessonsState, lesson: str | None, step: int = 0) -> None:
    if (lesson, step) != (ls.lesson, ls.step):
        stop_all(ls)
    ls.lesson, ls.step, ls.link_warning, ls.start_error = lesson, step, None, None


def on_move(ls: LessonsState, lesson: Lesson, delta: int) -> None:
    go_to(ls, lesson.id, min(max(ls.step + delta, 0), len(lesson.steps) - 1))


# --- the sidebar form -------------------------------------------------------------------------------
def varied_keys(lesson: Lesson, index: int) -> list[str]:
    """Keys the step's compared configs set themselves: each column keeps its own."""
    return sorted({k for v in lesson.steps[index].compare for k in v.config})


def step_values(lesson: Lesson, index: int) -> dict:
    """The form's values for a step: its (first) config, every key typed as the schema types it."""
    return make_config(lesson.configs(index)[0][1].model_dump()).model_dump()


def fill_form(ls: LessonsState, lesson: Lesson) -> None:
    """A new step starts its form from the step's own settings, not the last step's widgets."""
    if ls.form_for == (lesson.id, ls.step):
        return
    for key in [k for k in st.session_state if str(k).startswith(PREFIX + "w")]:
        del st.session_state[key]
    st.session_state[PREFIX + VALUES] = {**defaults(), **step_values(lesson, ls.step)}
    ls.form_for = (lesson.id, ls.step)


def sidebar_form(ls: LessonsState, lesson: Lesson) -> tuple[list[tuple[str, RunConfig]] | None, str | None]:
    """The unlocked settings in the sidebar; returns the step's (label, config) runs, or an error line."""
    fill_form(ls, lesson)
    varied = varied_keys(lesson, ls.step)
    with st.sidebar:
        st.caption("The lesson's settings. Greyed keys are fixed by the lesson; change the others and press "
                   "**Train** to try your own variation."
                   + (f" Each compared column sets {', '.join(code(k) for k in varied)} itself." if varied else ""))
    config_sidebar(prefix=PREFIX, link=False, locked=lesson.locked, hidden=[*lesson.hidden, *varied])
    values = st.session_state[PREFIX + VALUES]
    try:
        return lesson.configs(ls.step, values), None
    except ConfigError as err:
        return None, str(err)


# --- drawing ----------------------------------------------------------------------------------------
def lesson_list(ls: LessonsState, lessons: dict[str, Lesson]) -> None:
    st.title("Lessons: predict, observe, explain")
    st.caption("Each lesson is a prepared experiment in a few steps. Read the step, predict what the run will "
               "show, press **Train**, then read what the run's own numbers say. Add `&present=1` to a lesson's "
               "link for a projector: big charts, no sidebar, arrow keys for the steps.")
    for lesson in lessons.values():
        with st.container(border=True):
            a, b = st.columns([5, 1], vertical_alignment="center")
            a.markdown(f"**{plain(lesson.title)}** · {len(lesson.steps)} step{'s' if len(lesson.steps) > 1 else ''}")
            a.caption(f"{plain(lesson.text, limit=220)}  \nLink: {code(lesson_link(lesson.id), limit=None)}")
            b.button("Open", key=f"{PREFIX}open_{lesson.id}", icon=":material/school:", on_click=go_to,
                     args=(ls, lesson.id, 0))


def step_header(ls: LessonsState, lesson: Lesson) -> None:
    n, k = len(lesson.steps), ls.step
    if present.on():  # a projector's screen holds the step and its chart: a smaller title
        st.header(plain(lesson.title))
    else:
        st.title(plain(lesson.title))
    a, b, c, d = st.columns([1.4, 1, 1.2, 1], vertical_alignment="center")
    a.button("All lessons", key=f"{PREFIX}list", icon=":material/list:", on_click=go_to, args=(ls, None, 0))
    b.button("Back", key=BACK, icon=":material/arrow_back:", on_click=on_move, args=(ls, lesson, -1),
             disabled=k == 0, help="The previous step (in presenter mode: the left arrow key).")
    c.markdown(f"**Step {k + 1} of {n}**")
    d.button("Next", key=NEXT, icon=":material/arrow_forward:", on_click=on_move, args=(ls, lesson, 1),
             disabled=k == n - 1, help="The next step (in presenter mode: the right arrow key).")
    if present.on():
        arrow_keys(BACK, NEXT)


def step_text(ls: LessonsState, lesson: Lesson) -> None:
    k = ls.step
    if k == 0 or not present.on():  # presenter mode: the lesson's text once, then one step per screen
        st.markdown(plain(lesson.text))
    st.subheader(f"Step {k + 1}")
    st.markdown(plain(lesson.steps[k].text))
    if not present.on():
        st.caption(f"This step's link: {code(lesson_link(lesson.id, k), limit=None)}")


def question(ls: LessonsState, lesson: Lesson, trained: bool) -> int | None:
    """The prediction, asked before Train; fixed once the step has trained."""
    k = ls.step
    q = lesson.steps[k].question
    labels = lesson.choices(k)
    key = f"{PREFIX}q_{lesson.id}_{k}"
    if trained and (lesson.id, k) in ls.predictions:
        st.session_state[key] = ls.predictions[(lesson.id, k)]
    return st.radio(f"Predict: {plain(q.text)}", list(range(len(labels))), index=None, key=key,
                    format_func=lambda i: labels[i], disabled=trained,
                    help="Pick before you train: after the run, the page says which choice its numbers support.")


def controls(ls: LessonsState, lesson: Lesson, runs, err: str | None, choice: int | None, running: bool) -> None:
    cfgs = [cfg for _, cfg in runs] if runs else []
    problem = next((p for p in (jobs.limits_problem(c) for c in cfgs) if p), None)
    source = missing_source(cfgs)
    if present.on():  # a narrow column beside the chart: the note goes under the buttons
        a, b = st.columns(2, vertical_alignment="center")
        note = st.container()
    else:
        a, b, note = st.columns([1.2, 1.2, 6], vertical_alignment="center")
    a.button("Train", key=f"{PREFIX}train", type="primary", icon=":material/play_arrow:", on_click=on_train,
             args=(ls, lesson, runs or [], choice),
             disabled=bool(err or problem or source or choice is None or running),
             help="Train this step's run" + ("s side by side" if len(cfgs) > 1 else "") + " (saved to the run store).")
    b.button("Stop", key=f"{PREFIX}stop", icon=":material/stop:", on_click=on_stop, args=(ls,), disabled=not running)
    if err:
        note.error(f"These settings do not fit together: {plain(err)}")
    elif problem:
        note.error(f"Too large for this server: {plain(problem)}.", icon=":material/block:")
    elif source:
        earlier = next((i for i, s in enumerate(lesson.steps) if s.save_as == source), None)
        where = f"step {earlier + 1}" if earlier is not None else "the run it names"
        note.warning(f"Train {where} first: this step starts from its saved run {code(source)}.")
    elif choice is None and not running:
        note.caption("Pick your prediction first: **Train** starts once you have.")
    elif ls.start_error:
        note.error(plain(ls.start_error))


def answer_box(ls: LessonsState, lesson: Lesson, shown: list[RunView]) -> None:
    """After the runs end: which choice their numbers support, and why, with the numbers."""
    k = ls.step
    labels = lesson.choices(k)
    ans = step_answer(lesson, k, shown)
    picked = ls.predictions.get((lesson.id, k))
    said = f"You predicted “{labels[picked]}”. " if picked is not None else ""
    early = [v for v in shown if v.steps_done < v.cfg.steps and v.state != "diverged"]
    note = (" (the run was stopped before its last step: the answer reads the numbers it reached)" if early else "")
    if picked is not None and picked in ans.correct:
        st.success(plain(f"{said}That is what the run shows. {ans.why}{note}"), icon=":material/check_circle:")
    elif ans.correct:
        st.warning(plain(f"{said}The run's numbers support “{' / '.join(labels[i] for i in ans.correct)}”. "
                         f"{ans.why}{note}"), icon=":material/lightbulb:")
    else:
        st.info(plain(f"{said}{ans.why}{note}"))


def _chart(fig, name: str, run: str) -> None:
    draw_chart(fig, chart_key(PREFIX, name), run)


def single_charts(lesson: Lesson, k: int, view: RunView | None) -> None:
    """The step's chart first, full width; the others below (not in presenter mode: one chart per screen)."""
    big = present.on()
    chart = lesson.steps[k].chart
    if view is None or view.steps_done == 0:  # nothing recorded yet: the frame alone, not seven empty charts
        # A queued run's click is the costliest moment of a class: thirty of them in the same second.
        # Building every chart of a run with no steps took a fifth of that click's server time.
        note = ("Predict, then press Train" if view is None else
                "Queued: the chart fills in once the run starts" if view.state == "queued" else
                "The chart fills in from the first step")
        # an LSTM's or GRU's gates chart is taller (two panels): its frame takes that height, so the
        # page does not move when the chart fills in
        cfg = view.cfg if view is not None else lesson.configs(k)[0][1]
        _chart(frame(chart, note, big, gates_extra=cfg.cell != "rnn"), chart, "lesson")
        return
    figs = build_figures(view, big=big)
    _chart(figs.get(chart) or F.empty_figure(CHART_NAMES[chart], note="not recorded yet", big=big), chart, view.name)
    if big:
        return
    with st.expander("The run's other charts"):
        others = [name for name in figs if name != chart]
        for row in range(0, len(others), 2):
            for col, name in zip(st.columns(2), others[row:row + 2]):
                with col:
                    _chart(figs[name], name, view.name)


def compare_charts(lesson: Lesson, k: int, shown: list[RunView]) -> None:
    """A comparison step as Compare draws it (dashboard.compare_figures), the step's chart first."""
    step = lesson.steps[k]
    letters = list(LETTERS[: len(step.compare)])
    st.caption(" · ".join(f"**{x}**: {plain(v.label)}" for x, v in zip(letters, step.compare)))
    by_letter = dict(zip(letters, shown))
    figs = CF.build_comparison(by_letter) if shown else CF.empty_figures(letters)
    figs = {name: present.fit(fig) for name, fig in figs.items()}
    per_column = step.chart in ("heatmap", "gates")
    if per_column:
        for col, x in zip(st.columns(len(letters)), letters):
            with col:
                _chart(figs[f"{step.chart}_{x}"], f"{step.chart}_{x}", f"lesson-{step.chart}-{x}")
    else:
        _chart(figs[step.chart], step.chart, f"lesson-{step.chart}")
    if shown and not present.on():
        st.dataframe(pd.DataFrame(summary_rows(by_letter)).set_index("column"), key=f"{PREFIX}summary",
                     width="stretch")


def results(ls: LessonsState, lesson: Lesson, shown: list[RunView]) -> None:
    k = ls.step
    # one status per run; a comparison's side by side, each under its label, so they take one row
    slots = st.columns(len(shown)) if len(shown) > 1 else [st.container() for _ in shown]
    for slot, label, v in zip(slots, ls.labels, shown):
        room_follow.post_finished(v)  # in a class room, a run that ended goes on the class board, once
        with slot:
            if len(shown) > 1:
                st.caption(plain(label))
            draw_status(v)
    if shown and not any(v.running for v in shown):
        answer_box(ls, lesson, shown)
    st.markdown(f"**Look at {CHART_NAMES[lesson.steps[k].chart]}.**")
    if lesson.steps[k].compare:
        compare_charts(lesson, k, shown)
    else:
        single_charts(lesson, k, shown[0] if shown else None)


def live_step(ls: LessonsState, lesson: Lesson) -> None:
    """The runs' status, the answer and the charts in a fragment that polls while a job trains."""
    shown = views(ls) if ls.runs_here() else []
    timer_on = any(v.running for v in shown)
    ls.timer_on = timer_on
    fresh = [shown]

    @st.fragment(run_every=jobs.poll_every() if timer_on else None)
    def panel() -> None:
        current = fresh.pop() if fresh else (views(ls) if ls.runs_here() else [])
        results(ls, lesson, current)
        if ls.timer_on and not any(v.running for v in current):
            st.rerun()  # the whole page, to switch the timer off and update the buttons

    panel()


def lesson_view(ls: LessonsState, lesson: Lesson) -> None:
    """The step: its text, the prediction, Train / Stop, then the answer and the charts. In presenter
    mode the text sits beside the chart, so one screen holds the whole step.

    The runs' status is drawn first, into its place below the text: a click's answer ("Queued: 3rd
    in line", the first step) leaves the server before the sidebar form is rebuilt. When a class
    clicks Train in the same second, page scripts take their turns one by one (script_gate), so
    each student's answer leaves at the start of that page's turn, not at its end."""
    head = st.container()
    left, right = st.columns([2, 3], gap="large") if present.on() else (st.container(), st.container())
    with right:
        live_step(ls, lesson)
    runs, err = sidebar_form(ls, lesson)
    with head:
        step_header(ls, lesson)
    with left:
        step_text(ls, lesson)
        running = ls.runs_here() and any(not j.done for j in ls.jobs)
        choice = question(ls, lesson, trained=ls.runs_here())
        controls(ls, lesson, runs, err, choice, running)


def lessons_page() -> None:
    jobs.service()
    ls = lessons_state()
    lessons, problems = load_lessons()
    read_link(ls, lessons)
    if moved := room_follow.step_to_show(lessons):  # a class room's teacher set a step (dashboard/room_follow.py)
        go_to(ls, *moved)
    if ls.lesson is not None and ls.lesson not in lessons:  # its file went away since
        go_to(ls, None)
    if problems:
        st.warning("Some lesson files were not loaded:\n\n" + "\n".join(f"- {plain(p, limit=300)}" for p in problems))
    if ls.link_warning:
        st.warning(f"The link was not used as given: {ls.link_warning}", icon=":material/link_off:")
    if ls.lesson is None:
        lesson_list(ls, lessons)
    else:
        lesson_view(ls, lessons[ls.lesson])
    write_link(ls)
