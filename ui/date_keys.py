"""Typed dates apply on Enter.

Streamlit's date fields apply a typed date only when the field loses focus; people press Enter
(as in the place search next to them) and saw nothing happen. :func:`enter_commits_dates` adds,
once per page, a key listener that on Enter in a date field does what a click elsewhere does (the field
loses focus and its calendar closes), which applies what was typed.
"""

from __future__ import annotations

import streamlit as st

_SCRIPT = """
<script>
(function () {
  const doc = document;
  if (doc.__lulcEnterCommitsDates) return;
  doc.__lulcEnterCommitsDates = true;
  doc.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter") return;
    const el = ev.target;
    if (!(el instanceof Element) || !el.closest('[data-testid="stDateInput"]')) return;
    // what a click elsewhere does: the field loses focus and its calendar closes, applying the dates
    el.blur();
    const body = doc.body;
    for (const type of ["pointerdown", "mousedown", "pointerup", "mouseup", "click"]) {
      const Ev = type.startsWith("pointer") ? PointerEvent : MouseEvent;
      body.dispatchEvent(new Ev(type, {bubbles: true, cancelable: true, view: window}));
    }
  }, true);
})();
</script>
"""


def enter_commits_dates() -> None:
    """Make Enter in any date field of this page apply the typed date (an invisible element)."""
    st.html(_SCRIPT, unsafe_allow_javascript=True, width="content")
