"""Every page runs through the entry file (streamlit_app.py), even on a fresh server's first link.

Streamlit decides once per server process whether the app is a `pages/` folder app: until some
run has called `st.navigation`, a folder named pages/ beside the entry file makes it run the
requested page's script alone, with a menu of file names and without the entry file (no page
CSS, no presenter mode, no navigation). A server whose first request is a page's own link, say
`/lessons?lesson=vanishing&step=1&present=1`, stayed in that mode for its whole life. A page that
calls `through_entry()` first turns the fallback off and reruns, so the entry file runs.

AppTest resets that flag before each of its runs, so under AppTest such a page always goes through
the entry file, by a rerun: a button read by its return value (`if st.button(...)`) would lose its
click there; on_click callbacks keep theirs, so every page's actions are callbacks.
"""
from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def through_entry() -> None:
    """Call first in a page script: when this run is Streamlit's pages-folder fallback, switch it
    off for the server and rerun the app through the entry file (the link is kept as it is)."""
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False  # what st.navigation itself sets on its first call
        st.rerun()
