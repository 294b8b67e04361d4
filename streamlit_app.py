"""BPTT Lab: `streamlit run streamlit_app.py`. The pages live in pages/, their parts in dashboard/."""
from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="BPTT Lab", page_icon=":material/timeline:", layout="wide")

explore = st.Page("pages/explore.py", title="Explore", icon=":material/insights:", default=True)
st.navigation([explore]).run()
