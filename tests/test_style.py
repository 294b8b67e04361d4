"""The page CSS names selectors that exist in the Streamlit frontend installed here."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import streamlit

from dashboard import style

JS = Path(streamlit.__file__).parent / "static" / "static" / "js"


@pytest.fixture(scope="module")
def frontend() -> str:
    if not JS.is_dir():
        pytest.skip("this streamlit install has no bundled frontend")
    return "\n".join(p.read_text(errors="ignore") for p in JS.glob("*.js"))


def test_page_css_overrides_stale_fading_status_widget_and_button_truncation():
    css = style.page_css()
    assert css.startswith("<style>") and css.endswith("</style>")
    assert '[data-stale="true"]' in css and "opacity: 1 !important" in css
    assert '[data-testid="stStatusWidget"] { display: none' in css
    assert ".stButton button" in css and "nowrap" in css and "max-content" in css


def test_present_css_hides_the_sidebar_and_enlarges_the_font():
    css = style.present_css()
    assert '[data-testid="stSidebar"]' in css and "display: none" in css
    assert re.search(r"html \{ font-size: \d+px", css)


def test_every_selector_exists_in_the_installed_frontend(frontend):
    css = style.page_css() + style.present_css()
    test_ids = re.findall(r'data-testid="(\w+)"', css)
    assert {"stElementContainer", "stStatusWidget", "stSidebar", "stExpandSidebarButton"} <= set(test_ids)
    for tid in test_ids:
        assert f'"data-testid":`{tid}`' in frontend, tid
    assert '"data-stale":' in frontend  # the attribute a fragment rerun sets on elements not yet redrawn
    assert "className:`stButton`" in frontend
