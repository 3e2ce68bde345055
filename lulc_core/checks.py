"""Checks on a run's inputs and outputs that protect the user's data and time.

- :func:`same_window_note` / :func:`same_imagery_note`: comparing a date with itself shows no
  change, which is almost never what was meant.
- :func:`check_output_file`: an output never overwrites an input (local band files, the bundled
  demo scenes, the AOI file) and never lands on a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from lulc_core.errors import OutputError


def same_window_note(window_a, window_b) -> str | None:
    """A warning when dates A and B are the same window (the comparison can show no change)."""
    if window_a == window_b:
        return (f"Dates A and B are the same window ({window_a}): both sides use the same imagery, so no change "
                "can show; pick a later window for date B.")
    return None


def same_imagery_note(analysis) -> str | None:
    """A warning when both dates ended on the same acquisition dates (different windows, same scenes)."""
    da, db = analysis.a.scene.dates, analysis.b.scene.dates
    if da and da == db and analysis.a.window != analysis.b.window:
        return (f"Dates A and B both use the imagery of {', '.join(d.isoformat() for d in da)}: no change can "
                "show; pick windows that hold different acquisitions.")
    return None


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def check_output_file(out: str | Path, protected: Iterable[str | Path] = ()) -> Path:
    """``out`` resolved, or :class:`OutputError` when writing it could destroy data.

    ``protected`` holds input files and folders (everything under a protected folder counts).
    """
    p = Path(out).expanduser()
    if p.is_dir():
        raise OutputError(f"--out {out} is a folder; give a file name such as {Path(out) / 'scene.tif'}")
    target = p.resolve()
    for prot in protected:
        q = Path(prot).expanduser().resolve()
        if target == q or (q.is_dir() and _inside(target, q)):
            raise OutputError(f"--out {out} is {'inside the input folder ' + str(prot) if target != q else 'an input file'}"
                              "; writing there would overwrite source data: choose a path outside the inputs")
    return target


def check_output_folder(out: str | Path, protected: Iterable[str | Path] = ()) -> Path:
    """``out`` resolved, or :class:`OutputError` when it is a file or an input's place."""
    p = Path(out).expanduser()
    if p.exists() and not p.is_dir():
        raise OutputError(f"--out {out} is a file; give a folder for the results (it is created if missing)")
    target = p.resolve()
    for prot in protected:
        q = Path(prot).expanduser().resolve()
        if target == q:
            raise OutputError(f"--out {out} is the input {prot}; choose another folder for the results")
    return target
