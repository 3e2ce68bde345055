"""Large map images served once by URL (ui.served_images) instead of inlined in every map's HTML."""

from __future__ import annotations

import os

import numpy as np

from lulc_core.render import png_bytes
from ui.map_overlays import image_url
from ui.served_images import served_image_url, static_root_url


def noise_png(seed: int, side: int = 200) -> bytes:
    """A PNG that does not compress (about 160 KB for 200 px)."""
    return png_bytes(np.random.default_rng(seed).integers(0, 256, (side, side, 4), dtype=np.uint8))


def test_an_image_is_written_once_under_its_hash_and_served_from_the_static_root(tmp_path):
    folder = tmp_path / "maps"
    png = noise_png(0)
    url = served_image_url(png, folder=folder, root_url="/app/static", check_serving=False)
    assert url is not None and url.startswith("/app/static/maps/") and url.endswith(".png")
    files = list(folder.iterdir())
    assert len(files) == 1 and files[0].read_bytes() == png and url.endswith(files[0].name)
    assert served_image_url(png, folder=folder, root_url="/app/static", check_serving=False) == url
    assert len(list(folder.iterdir())) == 1
    other = served_image_url(noise_png(1), folder=folder, root_url="/app/static", check_serving=False)
    assert other != url and len(list(folder.iterdir())) == 2


def test_small_images_unwritable_folders_and_no_static_serving_stay_inline(tmp_path, monkeypatch):
    png = noise_png(0)
    assert served_image_url(png_bytes(np.zeros((8, 8, 4), np.uint8)), folder=tmp_path, check_serving=False) is None
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert served_image_url(png, folder=blocker / "maps", check_serving=False) is None
    monkeypatch.setattr("ui.served_images.static_serving_on", lambda: False)
    assert served_image_url(png, folder=tmp_path / "m2") is None and not (tmp_path / "m2").exists()
    monkeypatch.setattr("ui.served_images.static_serving_on", lambda: True)
    assert served_image_url(png, folder=tmp_path / "m2") is not None
    bounds = [[43.0, 10.0], [43.1, 10.1]]
    assert image_url(png_bytes(np.zeros((8, 8, 4), np.uint8)), bounds, False).startswith("data:image/png;base64,")


def test_the_folder_keeps_the_most_recently_used_images_under_its_caps(tmp_path):
    folder = tmp_path / "maps"
    kw = dict(folder=folder, root_url="/r", check_serving=False, max_files=3)
    urls = []
    for seed in range(3):
        urls.append(served_image_url(noise_png(seed), **kw))
        os.utime(folder / urls[-1].rsplit("/", 1)[1], (1000 + seed, 1000 + seed))
    served_image_url(noise_png(0), **kw)  # used again: now the most recent
    served_image_url(noise_png(3), **kw)  # a fourth: the least recently used (seed 1) goes
    names = {p.name for p in folder.iterdir()}
    assert len(names) == 3
    assert urls[0].rsplit("/", 1)[1] in names and urls[1].rsplit("/", 1)[1] not in names
    size = len(noise_png(0))
    served_image_url(noise_png(4), **{**kw, "max_files": 100, "max_bytes": 2 * size + 10})
    assert len(list(folder.iterdir())) == 2


def test_the_static_root_follows_the_base_url_path():
    assert static_root_url("") == "/app/static"
    assert static_root_url("/lulc/") == "/lulc/app/static"


def test_an_overlay_of_a_served_image_loads_it_from_this_server():
    """folium would read a scheme-less string as a local file: the overlay keeps the server path as is."""
    import folium

    from ui.map_overlays import image_overlay

    m = folium.Map(location=(43.05, 10.05), zoom_start=12, tiles=None)
    image_overlay("/app/static/maps/abc.png", [[43.0, 10.0], [43.1, 10.1]], opacity=1.0).add_to(m)
    html = m.get_root().render()
    assert 'L.imageOverlay(\n                "/app/static/maps/abc.png"' in html or '"/app/static/maps/abc.png",' in html
