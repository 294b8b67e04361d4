"""CSS the page injects once (st.html or st.markdown(..., unsafe_allow_html=True)).

Every selector was read from the frontend bundled with streamlit 1.67 (static/static/js);
tests/test_style.py checks that the installed frontend still has them, so a Streamlit upgrade
that renames one fails a test instead of silently bringing a defect back.
"""
from __future__ import annotations

# While a fragment reruns, Streamlit marks each element it has not redrawn yet with
# data-stale="true" and fades it to 33 % after 0.5 s (opacities.stale, "opacity 1s ease-in
# 0.5s"). A live chart redrawn every tick dimmed during about a quarter of the redraws.
STALE = '[data-testid="stElementContainer"][data-stale="true"]'
# Streamlit's own header widget: "Running...", and a Stop that would end the script, not the run.
STATUS = '[data-testid="stStatusWidget"]'
# In a narrow column Streamlit keeps a button one line high and cuts its label with an
# ellipsis ("T...", "S..."): the button grows to its label instead.
BUTTON = ".stButton button"
SIDEBAR = '[data-testid="stSidebar"]'
EXPAND_SIDEBAR = '[data-testid="stExpandSidebarButton"]'  # the ">" that brings a hidden sidebar back
MAIN = '[data-testid="stMainBlockContainer"]'


def page_css() -> str:
    """The app's look on every page: no fading charts, no second Stop, whole button labels."""
    return f"""<style>
{STALE} {{ opacity: 1 !important; transition: none !important; }}
{STATUS} {{ display: none !important; }}
{BUTTON} {{ min-width: max-content; white-space: nowrap; padding-left: 0.6rem; padding-right: 0.6rem; }}
{BUTTON} * {{ overflow: visible !important; text-overflow: clip !important; white-space: nowrap !important; }}
</style>"""


def present_css() -> str:
    """Presenter mode for a projector: the sidebar hidden, the main column full width, and a
    larger base font (Streamlit sizes its text in rem, so the root font size scales it all)."""
    return f"""<style>
{SIDEBAR}, {EXPAND_SIDEBAR} {{ display: none !important; }}
{MAIN} {{ max-width: 100% !important; padding-left: 2rem; padding-right: 2rem; }}
html {{ font-size: 20px; }}
</style>"""
