"""Text from a user (a link, a file, a run name) shown in the app as text, never as markup.

Streamlit renders st.warning / st.error / st.caption / st.markdown bodies as Markdown with
extras: `:red[...]` colours, `:material/x:` icons, `$...$` LaTeX, and links and images that
the browser would fetch. A link like `?cell=![x](http://127.0.0.1:9/x.png)` must not make
the page load an image, so every user string goes through `plain` or `code` first.
"""
from __future__ import annotations

from typing import Any

# Every character that starts markup in CommonMark, GitHub Markdown or Streamlit's extras.
SPECIAL = "\\`*_{}[]()#+-.!|~<>$:&"
_ESCAPES = {ord(c): "\\" + c for c in SPECIAL}
_CONTROLS = {"\r\n": "\\n", "\n": "\\n", "\r": "\\r", "\t": " "}  # shown as \n: a new line could start a block


def cut(text: str, limit: int | None) -> str:
    """`text` cut to `limit` characters, the last one an ellipsis; unchanged when it fits or limit is None."""
    return text if limit is None or len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def plain(text: str, limit: int | None = None) -> str:
    """Markdown that shows `text` literally: every special character backslash-escaped.

    CommonMark turns a backslash before any ASCII punctuation into that character, so
    `**bold**`, `[link](x)`, `:red[x]`, `$x$` and `<b>` all read as typed."""
    text = cut(str(text), limit).translate(_ESCAPES)
    for raw, shown in _CONTROLS.items():
        text = text.replace(raw, shown)
    return "".join(ch if ch.isprintable() or ch == " " else f"\\u{ord(ch):04x}" for ch in text)


def code(value: Any, limit: int | None = 40) -> str:
    """One user value as inline code, cut to `limit` characters.

    Inside a code span Markdown does nothing at all (no links, no colours, no math), and a
    backslash would show as a backslash, so the value is not escaped but fenced: the fence is
    one backtick longer than the longest run of backticks in the value (CommonMark's rule)."""
    text = cut(str(value), limit)
    for raw, shown in _CONTROLS.items():
        text = text.replace(raw, shown)
    text = "".join(ch if ch.isprintable() or ch == " " else "?" for ch in text)
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"
