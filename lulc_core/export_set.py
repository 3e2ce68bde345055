"""The whole set of exports of an :class:`~lulc_core.pipeline.Analysis`, kind by kind.

One table of export kinds (class GeoTIFFs per date, change GeoTIFFs, GeoJSON cells, CSV tables,
HTML report) serves both :func:`export_all`, which writes them all into one folder (built in a
temporary folder beside the destination and moved into place only once complete, so a run that
fails midway leaves earlier results whole), and :func:`download_bundles`, the dashboard's
downloads (one zip or file per kind, the same bytes).
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import stat
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from lulc_core.errors import LulcError
from lulc_core.export import write_change_geotiffs, write_classmap_geotiff, write_csvs, write_geojson
from lulc_core.report import html_report

if TYPE_CHECKING:
    from lulc_core.classify import ClassMap
    from lulc_core.model.weights import WeightsMetadata
    from lulc_core.pipeline import Analysis, DateResult


#: Every file :func:`export_all` writes (a folder holding only these is a previous result set).
EXPORT_NAMES = ("classes_a.tif", "classes_a.tif.aux.xml", "classes_b.tif", "classes_b.tif.aux.xml",
                "cells.geojson", "transitions.csv", "class_areas.csv", "group_areas.csv", "change_10m.tif",
                "change_cells.tif", "report.html")


ZIP_MIME = "application/zip"


ExportKind = tuple[str, Callable[[Path], list[Path]], str, str]
"""``(label, write(folder) -> files, download name, MIME type)``."""


def _export_kinds(analysis: Analysis, model_meta: WeightsMetadata | None = None) -> list[ExportKind]:
    """Every export, kind by kind (see :data:`ExportKind`); the download is a zip of the kind's files,
    or the one file itself. :func:`export_all` writes them all into one folder, :func:`download_bundles`
    one download each."""
    ch = analysis.change

    def classes(date: DateResult, joint: ClassMap, name: str) -> Callable[[Path], list[Path]]:
        def write(out: Path) -> list[Path]:  # the joint classification's map of the date
            tif = write_classmap_geotiff(out / name, joint, str(date.window))
            return [tif, tif.with_name(tif.name + ".aux.xml")]
        return write

    def report(out: Path) -> list[Path]:
        path = out / "report.html"
        path.write_text(html_report(analysis, model_meta), encoding="utf-8")
        return [path]

    return [
        ("Classes date A", classes(analysis.a, ch.a, "classes_a.tif"), "classes_a.zip", ZIP_MIME),
        ("Classes date B", classes(analysis.b, ch.b, "classes_b.tif"), "classes_b.zip", ZIP_MIME),
        ("Change GeoTIFFs", lambda out: list(write_change_geotiffs(out, analysis)), "change.zip", ZIP_MIME),
        ("GeoJSON cells", lambda out: [write_geojson(out / "cells.geojson", ch)], "cells.geojson",
         "application/geo+json"),
        ("Tables (CSV)", lambda out: list(write_csvs(out, ch)), "tables.zip", ZIP_MIME),
        ("HTML report", report, "report.html", "text/html"),
    ]


def _write_all(analysis: Analysis, out: Path, model_meta: WeightsMetadata | None = None) -> list[Path]:
    return [path for _, write, _, _ in _export_kinds(analysis, model_meta) for path in write(out)]


def publish_folder(tmp: Path, out: Path) -> None:
    """Move the complete result set in ``tmp`` to ``out``.

    ``out`` absent: one rename. ``out`` holding only an earlier result set: swapped whole (the old
    set is renamed aside, the new one renamed in, the old one deleted; a failure puts the old set
    back). ``out`` holding other files too: each result file replaced by rename, other files kept.
    """
    if not out.exists():
        os.rename(tmp, out)
        return
    if set(os.listdir(out)) <= set(EXPORT_NAMES) and out != Path.cwd().resolve():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / "set")
        try:
            os.rename(tmp, out)
        except BaseException:
            os.rename(old / "set", out)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return
    for f in sorted(tmp.iterdir()):
        os.replace(f, out / f.name)
    shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def export_all(analysis: Analysis, out_dir: str | Path, model_meta: WeightsMetadata | None = None) -> list[Path]:
    """Write every export of an analysis into ``out_dir`` (created if missing), whole or not at all;
    returns the paths written. Earlier results in ``out_dir`` stay intact if anything fails."""
    given = Path(out_dir)
    out = given.expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise LulcError(f"{given} is a file; give a folder for the results (it is created if missing)")
    tmp = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        os.chmod(tmp, stat.S_IMODE(out.stat().st_mode) if out.is_dir() else 0o777 & ~_umask())
        names = [p.name for p in _write_all(analysis, tmp, model_meta)]
        publish_folder(tmp, out)
    except OSError as exc:
        raise LulcError(f"could not write the results to {given} ({exc.strerror or exc}); earlier results there "
                        "are unchanged: free disk space, check permissions or choose another --out") from None
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return [given / n for n in names]


def download_bundles(analysis: Analysis,
                     model_meta: WeightsMetadata | None = None) -> dict[str, tuple[bytes, str, str]]:
    """What the dashboard offers for download: ``{label: (data, file name, MIME type)}``, the same
    files :func:`export_all` writes, zipped by kind."""
    return {label: (make(), name, mime) for label, (make, name, mime) in download_makers(analysis, model_meta).items()}


def download_makers(analysis: Analysis, model_meta: WeightsMetadata | None = None
                    ) -> dict[str, tuple[Callable[[], bytes], str, str]]:
    """:func:`download_bundles` with each file's bytes made only when asked for (once): ``{label:
    (make, file name, MIME type)}``, for a page that offers the downloads without building them first."""
    out = {}
    for label, write, name, mime in _export_kinds(analysis, model_meta):
        out[label] = (_once(functools.partial(_bundle, write, mime)), name, mime)
    return out


def _once(make: Callable[[], bytes]) -> Callable[[], bytes]:
    made: list[bytes] = []
    lock = threading.Lock()

    def get() -> bytes:
        with lock:
            if not made:
                made.append(make())
            return made[0]
    return get


def _bundle(write: Callable[[Path], list[Path]], mime: str) -> bytes:
    """The files ``write`` makes, zipped (or the one file itself when ``mime`` is not zip)."""
    with tempfile.TemporaryDirectory() as tmp:
        files = write(Path(tmp))
        if mime != ZIP_MIME:
            return files[0].read_bytes()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(Path(tmp).iterdir()):
                zf.write(f, f.name)
        return buf.getvalue()
