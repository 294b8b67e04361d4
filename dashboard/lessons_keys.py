"""Arrow keys for presenter mode: ArrowLeft / ArrowRight press the page's Back / Next buttons.

A zero-height `streamlit.components.v1.html` frame runs a few lines in the page's own document
(the frame is same-origin): they find each button by the class Streamlit gives its container,
`st-key-<key>`, and click it, so a key press is exactly a click. Keys typed into an input, a text
area, a select or an editable element are left alone, and so are presses with a modifier. Each
new frame takes the previous frame's listener off first, so reruns never stack listeners.
"""
from __future__ import annotations

import json

import streamlit.components.v1 as components

SCRIPT = """<script>
(function () {
  const doc = window.parent.document;
  const keys = %s;  // {"ArrowLeft": "st-key-...", "ArrowRight": "st-key-..."}
  if (window.parent.__bpttArrowKeys) doc.removeEventListener("keydown", window.parent.__bpttArrowKeys);
  function typing(el) {
    if (!el) return false;
    const tag = (el.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable
      || (el.getAttribute && el.getAttribute("role") === "combobox");
  }
  function onKey(ev) {
    const cls = keys[ev.key];
    if (!cls || ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    if (typing(ev.target) || typing(doc.activeElement)) return;
    const button = doc.querySelector("." + cls + " button");
    if (!button || button.disabled) return;
    ev.preventDefault();
    button.click();
  }
  window.parent.__bpttArrowKeys = onKey;
  doc.addEventListener("keydown", onKey);
})();
</script>"""


def key_class(key: str) -> str:
    """The class Streamlit 1.67 puts on a widget's container: st-key- and the key, other characters as '-'."""
    return "st-key-" + "".join(c if c.isalnum() or c in "_-" else "-" for c in key.strip())


def script(back_key: str, next_key: str) -> str:
    return SCRIPT % json.dumps({"ArrowLeft": key_class(back_key), "ArrowRight": key_class(next_key)})


def arrow_keys(back_key: str, next_key: str) -> None:
    """Let ArrowLeft / ArrowRight press the buttons with these keys (a zero-height frame)."""
    components.html(script(back_key, next_key), height=0)
