"""The Plotly config of a run's charts: the toolbar's camera button saves an image for slides.

    live_chart(fig, key, height, plotly_config(view.name))   # "Download plot" -> <run name>.png, 3x

The toolbar has one image button with one format. st.plotly_chart's config is JSON, so a second
button (which plotly.js defines with a JavaScript click handler) cannot be added from here;
`fmt="svg"` gives the vector format instead, for a page that offers the choice.
"""
from __future__ import annotations

import re
from typing import Literal

SCALE = 3  # a 700 px chart becomes 2100 px: sharp on a projector and in a slide deck
FALLBACK = "chart"  # the file name when the run name leaves nothing usable


def image_file_name(name: str) -> str:
    """A file name (without extension) from a run name: letters, digits, '.', '_' and '-' only."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name))
    safe = re.sub(r"\.{2,}", ".", safe).strip("._-")[:100]
    return safe or FALLBACK


def plotly_config(name: str, fmt: Literal["png", "svg"] = "png") -> dict:
    """st.plotly_chart's config for a chart of run `name`: no Plotly logo; the image button saves
    <name>.png at SCALE times the drawn size (or <name>.svg, which has no pixel size)."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"image format {fmt!r} is not offered; allowed: png, svg")
    options: dict = {"format": fmt, "filename": image_file_name(name)}
    if fmt == "png":
        options["scale"] = SCALE
    return {"displaylogo": False, "toImageButtonOptions": options}


__all__ = ["plotly_config", "image_file_name", "SCALE"]
