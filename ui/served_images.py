"""Large map images served by URL from Streamlit's static folder, instead of inlined in every map.

A map's HTML travels to the browser whole, and each of the Compare page's four maps holds a true-colour
image (~400 KB as PNG, ~535 KB as base64): inlined, 2.7 MB go over the websocket on the first draw and
are parsed in four iframes. Served, each image is one small URL in the HTML and one file the browser
fetches from the same server (offline too).

Files are named by the SHA-256 of their bytes (the same image from any session is one file, and a name
cannot be guessed from the place) in ``static/maps``, served at ``<baseUrlPath>/app/static/maps/``
(``server.enableStaticServing``, on in ``.streamlit/config.toml``). The folder is kept under
:data:`MAX_FILES` files and :data:`MAX_BYTES` bytes, least recently used first. Where the folder cannot
be written or static serving is off, :func:`served_image_url` returns None and the caller inlines the
image as before.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

SERVED_DIR = Path(__file__).resolve().parent.parent / "static" / "maps"
#: Images smaller than this stay inline (a request costs more than their bytes in the HTML).
MIN_BYTES = 32 * 1024
MAX_FILES = 2000
MAX_BYTES = 512 * 2**20

_LOCK = threading.Lock()


def static_root_url(base_url_path: str | None = None) -> str:
    """URL path of the app's ``static`` folder on the running server, e.g. ``/app/static`` (with
    Streamlit's ``server.baseUrlPath`` in front when one is set)."""
    if base_url_path is None:
        try:
            from streamlit import config as st_config

            base_url_path = st_config.get_option("server.baseUrlPath") or ""
        except Exception:  # streamlit missing or its config not loadable
            base_url_path = ""
    base = str(base_url_path).strip("/")
    return f"/{base}/app/static" if base else "/app/static"


def static_serving_on() -> bool:
    """Whether the running Streamlit serves the ``static`` folder."""
    try:
        from streamlit import config as st_config

        return bool(st_config.get_option("server.enableStaticServing"))
    except Exception:
        return False


def _prune(folder: Path, max_files: int, max_bytes: int) -> None:
    files = []
    for p in folder.iterdir():
        if p.is_file() and not p.name.startswith("."):
            st = p.stat()
            files.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in files)
    files.sort()  # oldest first
    while files and (len(files) > max_files or total > max_bytes):
        _, size, path = files.pop(0)
        path.unlink(missing_ok=True)
        total -= size


def served_image_url(data: bytes, suffix: str = ".png", folder: Path = SERVED_DIR,
                     root_url: str | None = None, min_bytes: int = MIN_BYTES, max_files: int = MAX_FILES,
                     max_bytes: int = MAX_BYTES, check_serving: bool = True) -> str | None:
    """The URL of ``data`` (an encoded image) served from ``folder`` (written once; a reuse marks it
    recently used), or None: under ``min_bytes``, static serving off, or the folder not writable."""
    if len(data) < min_bytes or (check_serving and not static_serving_on()):
        return None
    name = hashlib.sha256(data).hexdigest()[:32] + suffix
    path = folder / name
    try:
        with _LOCK:
            if path.exists():
                os.utime(path)
            else:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".{name}.{os.getpid()}.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, path)  # a reader never sees half a file
                _prune(folder, max_files, max_bytes)
    except OSError:
        return None
    root = static_root_url() if root_url is None else root_url.rstrip("/")
    return f"{root}/{folder.name}/{name}"
