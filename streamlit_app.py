"""BPTT Lab: `streamlit run streamlit_app.py`. The pages live in pages/, their parts in dashboard/.

Process set-up lives here, once per server: the training service (dashboard.jobs) starts its
workers on the first page run; this process itself only draws.
"""
from __future__ import annotations

import streamlit as st

from dashboard import present
from dashboard import room_follow
from dashboard import script_gate
from dashboard.style import page_css


def app() -> None:
    st.set_page_config(page_title="BPTT Lab", page_icon=":material/timeline:", layout="wide")
    st.html(page_css())  # charts that do not fade while redrawn, no second Stop, whole button labels

    explore = st.Page("pages/explore.py", title="Explore", icon=":material/insights:", default=True)
    compare = st.Page("pages/compare.py", title="Compare", icon=":material/compare:")
    runs = st.Page("pages/runs.py", title="Runs", icon=":material/folder_open:")
    theory = st.Page("pages/theory.py", title="Theory", icon=":material/functions:")
    klass = st.Page("pages/class.py", title="Class", icon=":material/groups:")
    lessons = st.Page("pages/lessons.py", title="Lessons", icon=":material/school:")
    sweeps = st.Page("pages/sweeps.py", title="Sweeps", icon=":material/grid_on:")
    present.setup()  # ?present=1 on any page: presenter mode (no sidebar, big charts), kept for the session
    room_follow.read_link()  # ?room=CODE on any page joins that class room; the sidebar names its step
    page = st.navigation([explore, compare, runs, sweeps, theory, klass, lessons])
    room_follow.room_sidebar()  # after st.navigation: its link to the Lessons page needs the pages registered
    page.run()
    present.keep_in_link()
    room_follow.keep_in_link()


with script_gate.turn():  # page scripts take turns: a class's thirty clicks are answered in turn, not all at the end
    app()
