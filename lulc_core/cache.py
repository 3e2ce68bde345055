"""A disk cache of Scenes: content-addressed keys, atomic writes, integrity checks, LRU bound.

Keys are the SHA-256 of everything that determines the pixels (endpoint, collection, grid,
window or acquisition, bands, evalscript version), passed in by the provider; nothing secret
may be part of them. Each entry is one ``.npz`` file holding the arrays and a JSON header with
a SHA-256 of the array bytes: an entry that fails to load or to verify is deleted and
reported as a miss, never served.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from lulc_core.errors import LulcError
from lulc_core.scene import Acquisition, Scene

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DEFAULT_MAX_MB = 2048


def default_cache_dir() -> Path:
    """``LULC_CACHE_DIR`` as set now (read at each call, never frozen at import), else ~/.cache/..."""
    return Path(os.environ.get("LULC_CACHE_DIR") or Path.home() / ".cache" / "lulc-change-explorer")


def default_max_bytes() -> int:
    """``LULC_CACHE_MAX_MB`` (megabytes, read at each call) in bytes; a clear message when it is not a number."""
    raw = os.environ.get("LULC_CACHE_MAX_MB", "").strip() or str(DEFAULT_MAX_MB)
    try:
        mb = float(raw)
    except ValueError:
        raise LulcError(f"LULC_CACHE_MAX_MB must be a number of megabytes, got {raw!r}; "
                        f"unset it for the default ({DEFAULT_MAX_MB})") from None
    if not mb > 0:
        raise LulcError(f"LULC_CACHE_MAX_MB must be positive, got {raw!r}")
    return int(mb * 2**20)


def cache_key(parts: dict[str, Any]) -> str:
    """A stable hex key for a JSON-serialisable description of a request."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class SceneCache:
    """Scenes on disk under ``root``, at most ``max_bytes`` in all (least recently used go first)."""

    def __init__(self, root: str | Path | None = None, max_bytes: int | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.max_bytes = max_bytes if max_bytes is not None else default_max_bytes()
        self.hits = 0
        self.misses = 0
        self.discarded = 0

    def path(self, key: str) -> Path:
        return self.root / f"{key}.scene.npz"

    def get(self, key: str) -> Scene | None:
        """The cached Scene, or None on a miss or a corrupt entry (which is deleted)."""
        p = self.path(key)
        if not p.exists():
            self.misses += 1
            return None
        try:
            scene = self._read(p)
        except Exception as exc:  # any decoding failure means the entry can't be trusted
            log.warning("discarding corrupt cache entry %s: %s", p.name, exc)
            p.unlink(missing_ok=True)
            self.discarded += 1
            self.misses += 1
            return None
        os.utime(p)  # mark as recently used
        self.hits += 1
        return scene

    def put(self, key: str, scene: Scene) -> Path:
        """Store a Scene atomically (write to a temporary file, then rename), then evict."""
        self.root.mkdir(parents=True, exist_ok=True)
        header = {
            "format": FORMAT_VERSION, "bands": list(scene.bands), "crs": scene.crs,
            "transform": list(scene.transform)[:6], "dates": [d.isoformat() for d in scene.dates],
            "provider": scene.provider, "collection": scene.collection,
            "processing_units": scene.processing_units,
            "acquisitions": [a.to_dict() for a in scene.acquisitions],
            "sha256": _digest(scene.data, scene.valid, scene.cloud),
        }
        buf = io.BytesIO()
        np.savez(buf, data=scene.data, valid=scene.valid, cloud=scene.cloud,
                 header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.evict()
        return self.path(key)

    def evict(self) -> None:
        """Delete least-recently-used entries until the cache fits in ``max_bytes``."""
        entries = sorted(self.root.glob("*.scene.npz"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in entries)
        while entries and total > self.max_bytes:
            p = entries.pop(0)
            total -= p.stat().st_size
            p.unlink(missing_ok=True)

    def clear(self) -> None:
        for p in self.root.glob("*.scene.npz"):
            p.unlink(missing_ok=True)

    @staticmethod
    def _read(p: Path) -> Scene:
        with zipfile.ZipFile(p) as zf:
            bad = zf.testzip()
            if bad:
                raise ValueError(f"CRC mismatch in {bad}")
        with np.load(p, allow_pickle=False) as z:
            header = json.loads(z["header"].tobytes().decode())
            data, valid, cloud = z["data"], z["valid"], z["cloud"]
        if header.get("format") != FORMAT_VERSION:
            raise ValueError(f"cache format {header.get('format')} != {FORMAT_VERSION}")
        if _digest(data, valid, cloud) != header["sha256"]:
            raise ValueError("checksum mismatch")
        acq = tuple(Acquisition(dt.datetime.fromisoformat(a["datetime"]), a["cloud_cover"], a["tile_id"],
                                a["provider"], a.get("id", "")) for a in header["acquisitions"])
        return Scene(data, tuple(header["bands"]), valid, cloud, header["crs"],
                     Affine(*header["transform"]), tuple(dt.date.fromisoformat(d) for d in header["dates"]),
                     header["provider"], header["collection"], 0.0, acq)
