import glob
import zipfile
from io import BytesIO

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.io import MemoryFile

from lulc_core.bands import (EUROSAT_BAND_ORDER, RGB_BANDS, S2_BANDS, band_indices, display_rgb,
                             eurosat_rgb_recipe)
from tests.conftest import FIXTURES, shared_path


def _recipe_mad(tif_bytes: bytes, jpg_bytes: bytes) -> float:
    with MemoryFile(tif_bytes) as mf, mf.open() as ds:
        dn = ds.read()
    assert dn.shape == (13, 64, 64)
    rgb = eurosat_rgb_recipe(dn[band_indices(EUROSAT_BAND_ORDER, RGB_BANDS)])
    jpg = np.asarray(Image.open(BytesIO(jpg_bytes)).convert("RGB")).transpose(2, 0, 1)
    return float(np.abs(rgb.astype(float) - jpg).mean())


def test_recipe_reproduces_shipped_eurosat_jpegs():
    tifs = sorted(glob.glob(str(FIXTURES / "eurosat_recipe_pairs" / "*" / "*.tif")))
    assert len(tifs) == 20
    mads = [_recipe_mad(open(t, "rb").read(), open(t[:-4] + ".jpg", "rb").read()) for t in tifs]
    assert np.mean(mads) <= 2.0, mads
    assert max(mads) < 6.0


def test_recipe_reproduces_all_270_shared_pairs():
    ms = zipfile.ZipFile(shared_path("eurosat", "eurosat_ms_subset270_tifs.zip"))
    rgb = zipfile.ZipFile(shared_path("eurosat", "eurosat_rgb.zip"))
    names = [n for n in ms.namelist() if n.endswith(".tif")]
    assert len(names) == 270
    mads = [_recipe_mad(ms.read(n), rgb.read(n[:-4] + ".jpg")) for n in names]
    assert np.mean(mads) <= 2.0


def test_wrong_band_order_does_not_reproduce_jpegs():
    """Reading B8A as if it were at its S2 position (index 8) would break the contract."""
    t = sorted(glob.glob(str(FIXTURES / "eurosat_recipe_pairs" / "Forest" / "*.tif")))[0]
    with rasterio.open(t) as ds:
        dn = ds.read()
    jpg = np.asarray(Image.open(t[:-4] + ".jpg")).transpose(2, 0, 1).astype(float)
    wrong = eurosat_rgb_recipe(dn[[7, 2, 1]])  # B08 (near infrared) as red
    right = eurosat_rgb_recipe(dn[band_indices(EUROSAT_BAND_ORDER, RGB_BANDS)])
    assert np.abs(right - jpg).mean() < np.abs(wrong.astype(float) - jpg).mean() - 5


def test_recipe_values():
    dn = np.array([0, 1, 5, 1375, 2750, 9000, np.nan], dtype=np.float32)
    out = eurosat_rgb_recipe(dn)
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 1, 1, 128, 255, 255, 0]
    valid = np.array([1, 1, 1, 0, 1, 1, 1], dtype=bool)
    assert eurosat_rgb_recipe(dn, valid)[3] == 0


def test_band_tables():
    assert EUROSAT_BAND_ORDER[-1] == "B8A" and len(EUROSAT_BAND_ORDER) == 13
    assert {b.name for b in S2_BANDS} == set(EUROSAT_BAND_ORDER)
    assert band_indices(EUROSAT_BAND_ORDER, RGB_BANDS) == [3, 2, 1]
    with pytest.raises(ValueError, match="missing band.*B04"):
        band_indices(["B02", "B03"], RGB_BANDS)


def test_display_stretch_is_separate_from_recipe():
    rng = np.random.default_rng(0)
    dn = rng.integers(300, 1500, size=(3, 32, 32)).astype(np.uint16)
    img = display_rgb(dn)
    assert img.shape == (32, 32, 3) and img.max() == 255 and img.min() == 0
