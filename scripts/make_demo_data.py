"""Reproduce the bundled demo scenes (lulc_core/demo_data/) from the shared OSCD copy.

Copies, byte for byte, the 13 band GeoTIFFs of both dates of a few OSCD areas, their outline
and dates, and writes a trimmed ``index.json`` and the attribution. Change maps (``cm/``,
CC BY-NC-SA) are never copied.

Usage: python scripts/make_demo_data.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AREAS = ("norcia", "pisa", "saclay_e", "montpellier", "valencia")
PLACES = {"norcia": "Norcia, Italy", "pisa": "Pisa, Italy", "saclay_e": "Saclay, France",
          "montpellier": "Montpellier, France", "valencia": "Valencia, Spain"}  # shown in the dashboard
OUT = ROOT / "lulc_core" / "demo_data"

ATTRIBUTION = """# Bundled demo imagery

Real Sentinel-2 Level-1C scenes (13 bands, digital numbers = reflectance x 10000) of {n} areas,
two dates each, copied unchanged from the Onera Satellite Change Detection dataset (OSCD).

**Contains modified Copernicus Sentinel data 2015-2018.** Original Copernicus Sentinel data is
available from the European Space Agency (https://sentinel.esa.int).

Cite: R. Caye Daudt, B. Le Saux, A. Boulch, Y. Gousseau, "Urban Change Detection for
Multispectral Earth Observation Using Convolutional Neural Networks", IGARSS 2018.
Dataset home page: https://rcdaudt.github.io/oscd/ . The dataset's own README is
`OSCD_README.txt`. Its change maps (CC BY-NC-SA, non-commercial) are **not** included.

Source: GitHub `ChenHongruixuan/ChangeDetectionRepository`, commit
`020f7702f235001ea0b2abac054651ab28aeeb0f`; band files were re-encoded losslessly with DEFLATE
by the copy in the project's shared data; pixel values are exactly the source's.
Reproduce with `python scripts/make_demo_data.py`.

| area | dates | MGRS tile(s) |
| --- | --- | --- |
{rows}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    args = ap.parse_args()
    s2 = Path(args.shared) / "data" / "s2"
    index = json.loads((s2 / "index.json").read_text())
    if OUT.exists():
        shutil.rmtree(OUT)
    rows, areas = [], {}
    for area in AREAS:
        src = s2 / "oscd" / area
        for d in index["areas"][area]["dates"]:
            folder = Path(d["folder"]).name
            shutil.copytree(src / folder, OUT / area / folder)
        for f in (f"{area}.geojson", "dates.txt"):
            shutil.copy2(src / f, OUT / area / f)
        entry = {k: v for k, v in index["areas"][area].items() if k != "label"}
        entry["place"] = PLACES[area]
        areas[area] = entry
        rows.append(f"| {area} | {', '.join(d['date'] for d in entry['dates'])} | "
                    f"{' / '.join(d['mgrs_tile'] for d in entry['dates'])} |")
    trimmed = {k: v for k, v in index.items() if k != "areas"}
    trimmed["areas"] = areas
    (OUT / "index.json").write_text(json.dumps(trimmed, indent=1))
    shutil.copy2(s2 / "oscd" / "OSCD_README.txt", OUT / "OSCD_README.txt")
    (OUT / "SOURCE.md").write_text(ATTRIBUTION.format(n=len(AREAS), rows="\n".join(rows)))
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
