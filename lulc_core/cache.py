"""A disk cache of Scenes: content-addressed keys, atomic writes, integrity checks, LRU bound.

Keys are the SHA-256 of everything that determines the pixels (endpoint, collection, grid,
window or acquisition, bands, evalscript version), passed in by the provider; nothing secret
may be part of them. Each entry is one ``.npz`` file holding the arrays and a JSON header with
a SHA-256 of the array bytes: an entry that fails to load or to verify is deleted and
reported as a miss, never served.

The cache is a convenience, never a reason for a run to fail: a write that fails (read-only
folder, full disk) is a warning (logged and kept in :attr:`SceneCache.warnings`) and the Scene
is still returned to the caller. It is safe for several threads and processes at once: entries
appear by atomic rename, a reader reads one open file (an eviction or a rewrite in between
changes nothing it sees), and every file may vanish at any moment without an error.
Temporary files left by a process killed mid-write are swept once they are
:data:`STALE_TMP_SECONDS` old.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from lulc_core.errors import CacheError
from lulc_core.scene import Acquisition, Scene
from lulc_core.settings import load_settings

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: only the window of the scene holding data is stored
#: A temporary file older than this (seconds since its last write) belongs to a dead writer.
STALE_TMP_SECONDS = 15 * 60
TMP_SUFFIX = ".scene.tmp"


def default_cache_dir() -> Path:
    """``LULC_CACHE_DIR`` as set now (see :mod:`lulc_core.settings`), else ~/.cache/lulc-change-explorer."""
    return load_settings().cache_dir


def default_max_bytes() -> int:
    """``LULC_CACHE_MAX_MB`` as set now, in bytes; a clear message when it is not a positive number."""
    return load_settings().cache_max_bytes


def cache_key(parts: dict[str, Any]) -> str:
    """A stable hex key for a JSON-serialisable description of a request."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        for part in (a if a.ndim == 3 else (a,)):  # band by band: never a copy of a whole scene
            h.update(np.ascontiguousarray(part).data)
    return h.hexdigest()


def _data_window(scene: Scene) -> tuple[int, int, int, int]:
    """Rows r0:r1 and columns c0:c1 holding every pixel with data (any band > 0, valid or cloud):
    only that window is stored, so an AOI much larger than its imagery costs memory and disk for
    the imagery only (outside it everything is 0 / False)."""
    any_px = scene.valid | scene.cloud
    for band in scene.data:
        any_px |= band > 0
    rows, cols = np.flatnonzero(any_px.any(axis=1)), np.flatnonzero(any_px.any(axis=0))
    if rows.size == 0:
        return 0, 0, 0, 0
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


class SceneCache:
    """Scenes on disk under ``root``, at most ``max_bytes`` in all (least recently used go first)."""

    def __init__(self, root: str | Path | None = None, max_bytes: int | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.max_bytes = max_bytes if max_bytes is not None else default_max_bytes()
        self.hits = 0
        self.misses = 0
        self.discarded = 0
        #: Why each discarded entry could not be read (file name: exception), for the log and diagnosis.
        self.discard_reasons: list[str] = []
        #: One line per failed cache write since this object was made (the run went on without it).
        self.warnings: list[str] = []

    def path(self, key: str) -> Path:
        return self.root / f"{key}.scene.npz"

    def get(self, key: str) -> Scene | None:
        """The cached Scene, or None on a miss or a corrupt entry (which is deleted)."""
        p = self.path(key)
        try:
            f = open(p, "rb")
        except OSError:  # absent, evicted a moment ago, or unreadable: a miss either way
            self.misses += 1
            return None
        with f:
            try:
                scene = self._read(f)
            except Exception as exc:  # any decoding failure means the entry can't be trusted
                log.warning("discarding corrupt cache entry %s: %s", p.name, exc)
                self._unlink_if_same(p, os.fstat(f.fileno()))
                self.discarded += 1
                self.discard_reasons.append(f"{p.name}: {type(exc).__name__}: {exc}")
                self.misses += 1
                return None
        try:
            os.utime(p)  # mark as recently used
        except OSError:
            pass  # evicted meanwhile, or a read-only cache: the Scene is still good
        self.hits += 1
        return scene

    def put(self, key: str, scene: Scene) -> Path | None:
        """Store a Scene atomically (temporary file, then rename), then evict; None when it could not
        be written (the reason is logged and added to :attr:`warnings`, nothing is raised)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.sweep_stale()
            header = {
                "format": FORMAT_VERSION, "bands": list(scene.bands), "crs": scene.crs,
                "transform": list(scene.transform)[:6], "dates": [d.isoformat() for d in scene.dates],
                "provider": scene.provider, "collection": scene.collection,
                "processing_units": scene.processing_units,
                "acquisitions": [a.to_dict() for a in scene.acquisitions],
            }
            r0, r1, c0, c1 = _data_window(scene)
            data = scene.data[:, r0:r1, c0:c1]
            header["data_window"] = [r0, r1, c0, c1]
            header["sha256"] = _digest(data, scene.valid, scene.cloud)
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=TMP_SUFFIX)
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, data=data, valid=scene.valid, cloud=scene.cloud,
                             header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path(key))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            msg = (f"the scene cache could not be written in {self.root} ({exc.strerror or exc}); the run goes on "
                   "without it, so the same request will be fetched again next time: free disk space or set "
                   "LULC_CACHE_DIR to a writable folder")
            log.warning(msg)
            self.warnings.append(msg)
            return None
        self.evict()
        return self.path(key)

    def evict(self) -> None:
        """Delete least-recently-used entries until the cache fits in ``max_bytes``.

        Entries that other processes delete meanwhile are simply skipped."""
        entries = []
        for p in self.root.glob("*.scene.npz"):
            try:
                st = p.stat()
            except OSError:
                continue
            entries.append((st.st_mtime, st.st_size, p))
        entries.sort(key=lambda e: e[0])
        total = sum(size for _, size, _ in entries)
        for _, size, p in entries:
            if total <= self.max_bytes:
                break
            try:
                p.unlink(missing_ok=True)
            except OSError as exc:  # read-only cache: it simply stays over its bound
                log.warning("could not evict cache entry %s: %s", p.name, exc)
            total -= size

    def sweep_stale(self, max_age_s: float = STALE_TMP_SECONDS) -> int:
        """Delete temporary files no write has touched for ``max_age_s`` seconds; returns how many."""
        import time

        now, swept = time.time(), 0
        for p in list(self.root.glob("*" + TMP_SUFFIX)) + list(self.root.glob("tmp*.tmp")):
            try:
                if now - p.stat().st_mtime > max_age_s:
                    p.unlink()
                    swept += 1
            except OSError:
                continue  # finished or swept by another process meanwhile
        return swept

    def clear(self) -> None:
        for p in self.root.glob("*.scene.npz"):
            p.unlink(missing_ok=True)

    @staticmethod
    def _unlink_if_same(p: Path, st: os.stat_result) -> None:
        """Delete ``p`` only if it is still the file described by ``st`` (not a newer good entry)."""
        try:
            now = p.stat()
            if (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev):
                p.unlink()
        except OSError:
            pass

    @staticmethod
    def _read(f) -> Scene:
        """A Scene from an open entry file (one file object, so a concurrent rename can't mix two entries)."""
        with zipfile.ZipFile(f) as zf:
            bad = zf.testzip()
            if bad:
                raise CacheError(f"CRC mismatch in {bad}")
        f.seek(0)
        with np.load(f, allow_pickle=False) as z:
            header = json.loads(z["header"].tobytes().decode())
            data, valid, cloud = z["data"], z["valid"], z["cloud"]
        if header.get("format") != FORMAT_VERSION:
            raise CacheError(f"cache format {header.get('format')} != {FORMAT_VERSION}")
        if _digest(data, valid, cloud) != header["sha256"]:
            raise CacheError("checksum mismatch")
        r0, r1, c0, c1 = header["data_window"]
        full = np.zeros((data.shape[0],) + valid.shape, dtype=data.dtype)  # pages outside stay unallocated
        full[:, r0:r1, c0:c1] = data
        data = full
        acq = tuple(Acquisition(dt.datetime.fromisoformat(a["datetime"]), a["cloud_cover"], a["tile_id"],
                                a["provider"], a.get("id", "")) for a in header["acquisitions"])
        return Scene(data=data, bands=tuple(header["bands"]), valid=valid, cloud=cloud, crs=header["crs"],
                     transform=Affine(*header["transform"]),
                     dates=tuple(dt.date.fromisoformat(d) for d in header["dates"]), provider=header["provider"],
                     collection=header["collection"], processing_units=0.0, acquisitions=acq)
