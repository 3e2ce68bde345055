"""The evalscripts: the 13 Level-1C bands as DN plus dataMask and CLM, single date or ORBIT median."""

from __future__ import annotations

from lulc_core.bands import EUROSAT_BAND_ORDER, N_BANDS
from lulc_core.collection import Collection

#: Bump when the evalscript or the decoding changes what pixels a request gives (part of cache keys).
EVALSCRIPT_VERSION = 1
#: Bump when :func:`composite_evalscript` changes its pixels (part of a window fetch's cache key).
COMPOSITE_VERSION = 1
#: The name of the per-pixel reducer in the composite evalscript (the local fake recognises it).
COMPOSITE_REDUCER = "clearMedian"


def evalscript(collection: Collection = Collection.L1C) -> str:
    """13 bands in EuroSAT order as DN (UINT16) in "default"; dataMask and CLM (UINT8) in "masks".

    A band the collection does not serve (Level-2A has no B10) is returned as 0.
    """
    inputs = [b for b in EUROSAT_BAND_ORDER if b in collection.bands]
    values = ", ".join("0" if b not in inputs else f"s.{b}" for b in EUROSAT_BAND_ORDER)
    band_list = ", ".join(f'"{b}"' for b in inputs + ["dataMask", "CLM"])
    return f"""//VERSION=3
function setup() {{
  return {{
    input: [{{bands: [{band_list}], units: "DN"}}],
    output: [
      {{id: "default", bands: {N_BANDS}, sampleType: "UINT16"}},
      {{id: "masks", bands: 2, sampleType: "UINT8"}}
    ]
  }};
}}

function evaluatePixel(s) {{
  return {{
    default: [{values}],
    masks: [s.dataMask, s.CLM]
  }};
}}
"""


def composite_evalscript(collection: Collection = Collection.L1C) -> str:
    """ORBIT mosaicking: per pixel and band the median of the clear samples of every orbit.

    Same outputs as :func:`evalscript` (13 bands as DN in "default", dataMask and cloud in
    "masks"). A sample is clear where dataMask is 1 and CLM is 0. The median of an even count is
    the lower one (an observed value; with two samples, the darker, less hazy one). Where no
    sample is clear, the valid sample of the orbit with the least tile cloud cover (earliest on a
    tie) is returned with the cloud flag 1; where no sample has data, zeros and dataMask 0.
    """
    inputs = [b for b in EUROSAT_BAND_ORDER if b in collection.bands]
    values = ", ".join("0" if b not in inputs else f"px.{b}" for b in EUROSAT_BAND_ORDER)
    band_list = ", ".join(f'"{b}"' for b in inputs + ["dataMask", "CLM"])
    bands = ", ".join(f'"{b}"' for b in inputs)
    return f"""//VERSION=3
var BANDS = [{bands}];

function setup() {{
  return {{
    input: [{{bands: [{band_list}], units: "DN"}}],
    output: [
      {{id: "default", bands: {N_BANDS}, sampleType: "UINT16"}},
      {{id: "masks", bands: 2, sampleType: "UINT8"}}
    ],
    mosaicking: "ORBIT"
  }};
}}

function orbitCloud(orbit) {{
  var cc = Infinity;
  for (var t = 0; t < orbit.tiles.length; t++) {{
    cc = Math.min(cc, orbit.tiles[t].cloudCoverage);
  }}
  return cc;
}}

function lowerMedian(values) {{
  values.sort(function (a, b) {{ return a - b; }});
  return values[(values.length - 1) >> 1];
}}

function {COMPOSITE_REDUCER}(samples, scenes) {{
  var clear = [], best = null, bestCC = Infinity, bestDate = "";
  for (var i = 0; i < samples.length; i++) {{
    var s = samples[i];
    if (s.dataMask !== 1) {{ continue; }}
    if (s.CLM === 0) {{ clear.push(s); }}
    var orbit = scenes.orbits[i], cc = orbitCloud(orbit);
    if (cc < bestCC || (cc === bestCC && orbit.dateFrom < bestDate)) {{
      best = s; bestCC = cc; bestDate = orbit.dateFrom;
    }}
  }}
  var px = {{dataMask: best === null ? 0 : 1, CLM: best !== null && clear.length === 0 ? 1 : 0}};
  for (var b = 0; b < BANDS.length; b++) {{
    var name = BANDS[b];
    if (clear.length > 0) {{
      px[name] = lowerMedian(clear.map(function (c) {{ return c[name]; }}));
    }} else {{
      px[name] = best === null ? 0 : best[name];
    }}
  }}
  return px;
}}

function evaluatePixel(samples, scenes) {{
  var px = {COMPOSITE_REDUCER}(samples, scenes);
  return {{
    default: [{values}],
    masks: [px.dataMask, px.CLM]
  }};
}}
"""
