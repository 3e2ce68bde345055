"""Areas kept under a short id for links (lulc_core.aoi_store)."""

import pytest
from shapely import geometry as sg

from lulc_core.aoi import AOI
from lulc_core.aoi_store import ID_LENGTH, aoi_id, load_aoi, store_aoi
from lulc_core.errors import AOIError

POLYGON = sg.Polygon([(13.080, 42.785), (13.100, 42.787), (13.095, 42.796), (13.082, 42.793)])


def test_a_kept_polygon_comes_back_exactly(tmp_path):
    aoi = AOI(POLYGON, name="my field")
    key = store_aoi(aoi, tmp_path / "aois")
    assert len(key) == ID_LENGTH and key == aoi_id(aoi)
    back = load_aoi(key, tmp_path / "aois")
    assert back.geometry.equals_exact(POLYGON, 0) and back.name == "my field" and back == aoi
    assert store_aoi(aoi, tmp_path / "aois") == key and len(list((tmp_path / "aois").iterdir())) == 1
    assert aoi_id(AOI(POLYGON, name="other")) != key  # the name is part of what is kept


def test_bad_unknown_and_unreadable_ids_say_so(tmp_path):
    with pytest.raises(AOIError, match="bad area id"):
        load_aoi("../../etc/passwd", tmp_path)
    with pytest.raises(AOIError, match="not kept on this server"):
        load_aoi("0" * ID_LENGTH, tmp_path)
    (tmp_path / ("1" * ID_LENGTH + ".geojson")).write_text("{not json")
    with pytest.raises(AOIError, match="cannot be read"):
        load_aoi("1" * ID_LENGTH, tmp_path)
