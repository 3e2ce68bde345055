"""Evalscripts read with regular expressions (never executed), and the ORBIT reducers the fake computes."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lulc_core.composite import lower_median_of_clear
from tests.fakes.sentinelhub.common import ServiceError

@dataclass
class Evalscript:
    inputs: list[str]
    units: str
    outputs: list[dict[str, Any]] = field(default_factory=list)  # id, bands, sampleType, values
    mosaicking: str = "SIMPLE"
    reducer: str = ""  # ORBIT: the known per-pixel reducer evaluatePixel applies to the samples


#: Per-pixel reducers of ORBIT samples the fake computes (the evalscript function it stands for).
ORBIT_REDUCERS = {
    "clearMedian": "per band, the lower median of the clear samples (dataMask 1 and CLM 0); where no sample is "
                   "clear, the valid sample of the orbit with the least cloud cover (earliest on a tie) with "
                   "CLM 1; dataMask 1 where any sample has data",
}


def _js_block(src: str, start: int) -> str:
    """The text of the brace block opening at or after ``start`` (naive brace matching)."""
    i = src.find("{", start)
    if i < 0:
        return ""
    depth = 0
    for j in range(i, len(src)):
        if src[j] == "{":
            depth += 1
        elif src[j] == "}":
            depth -= 1
            if depth == 0:
                return src[i + 1: j]
    return src[i + 1:]


def parse_evalscript(src: str) -> Evalscript:
    """Read setup() inputs/outputs and evaluatePixel's returned sample fields (no JS execution)."""
    if not src.lstrip().startswith("//VERSION=3"):
        raise ServiceError(400, "The evalscript must start with //VERSION=3 (the fake knows version 3 only)",
                         "RENDERER_EXCEPTION")
    src_nc = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    src_nc = re.sub(r"(?<!:)//[^\n]*", "", src_nc)
    m = re.search(r"function\s+setup\s*\([^)]*\)", src_nc)
    if not m:
        raise ServiceError(400, "The evalscript has no setup() function", "RENDERER_EXCEPTION")
    setup = _js_block(src_nc, m.end())
    mi = re.search(r"\binput\s*:", setup)
    mo = re.search(r"\boutput\s*:", setup)
    if not mi:
        raise ServiceError(400, "setup() returns no input", "RENDERER_EXCEPTION")
    input_text = setup[mi.end(): mo.start() if mo and mo.start() > mi.end() else len(setup)]
    bm = re.search(r"bands\s*:\s*\[([^\]]*)\]", input_text)
    if bm:
        inputs = re.findall(r"[\"'](\w+)[\"']", bm[1])
    else:  # input: ["B02", "B03"]
        inputs = re.findall(r"[\"'](\w+)[\"']", input_text.split("]")[0])
    if not inputs:
        raise ServiceError(400, "setup() input names no bands", "RENDERER_EXCEPTION")
    um = re.search(r"units\s*:\s*[\"'](\w+)[\"']", input_text)
    units = um[1] if um else "REFLECTANCE"
    mm = re.search(r"\bmosaicking\s*:\s*(?:[\"'](\w+)[\"']|Mosaicking\.(\w+))", setup)
    mosaicking = ((mm[1] or mm[2]) if mm else "SIMPLE").upper()
    if mosaicking not in ("SIMPLE", "ORBIT"):
        raise ServiceError(400, f"the fake supports SIMPLE and ORBIT mosaicking, not {mosaicking}",
                           "RENDERER_EXCEPTION")
    outputs: list[dict[str, Any]] = []
    if mo:
        out_text = setup[mo.end():]
        for obj in re.finditer(r"\{([^{}]*)\}", out_text):
            body = obj[1]
            nb = re.search(r"\bbands\s*:\s*(\d+)", body)
            if not nb:
                continue
            im = re.search(r"\bid\s*:\s*[\"']([\w-]+)[\"']", body)
            st = re.search(r"sampleType\s*:\s*(?:[\"'](\w+)[\"']|SampleType\.(\w+))", body)
            outputs.append({"id": im[1] if im else "default", "bands": int(nb[1]),
                            "sampleType": ((st[1] or st[2]) if st else "AUTO").upper()})
    if not outputs:
        outputs = [{"id": "default", "bands": len(inputs), "sampleType": "AUTO"}]
    # what evaluatePixel returns per output: sample.X fields or numeric constants
    em = re.search(r"function\s+evaluatePixel\s*\(\s*(\w+)", src_nc)
    body = _js_block(src_nc, em.end()) if em else ""
    var = em[1] if em else "sample"
    reducer = ""
    if mosaicking == "ORBIT":  # evaluatePixel gets an array of samples: the fake needs a reducer it knows
        rm = re.search(r"\b(?:var|let|const)\s+(\w+)\s*=\s*(\w+)\s*\(\s*" + re.escape(var) + r"\b[^)]*\)", body)
        if (rm is None or rm[2] not in ORBIT_REDUCERS
                or not re.search(r"function\s+" + re.escape(rm[2]) + r"\s*\(", src_nc)):
            raise ServiceError(400, "the fake evaluates ORBIT evalscripts only through a per-pixel reducer defined in "
                                  f"the script that it knows ({', '.join(ORBIT_REDUCERS)}), e.g. "
                                  f"'var px = clearMedian({var}, scenes);' then px.B04...", "RENDERER_EXCEPTION")
        var, reducer = rm[1], rm[2]
    next_input = 0
    for o in outputs:
        lm = re.search(r"[\"']?\b" + re.escape(o["id"]) + r"\b[\"']?\s*:\s*\[([^\]]*)\]", body)
        if lm is None and len(outputs) == 1:
            lm = re.search(r"return\s*\[([^\]]*)\]", body)
        if lm is not None:
            values: list[Any] = []
            for item in (x.strip() for x in lm[1].split(",") if x.strip()):
                fm = re.fullmatch(re.escape(var) + r"\.(\w+)", item)
                if fm:
                    if fm[1] not in inputs:
                        raise ServiceError(400, f"evaluatePixel uses {item} but setup() does not request "
                                              f"{fm[1]}", "RENDERER_EXCEPTION")
                    values.append(fm[1])
                else:
                    try:
                        values.append(float(item))
                    except ValueError:
                        raise ServiceError(400, f"the fake cannot evaluate {item!r} in evaluatePixel",
                                         "RENDERER_EXCEPTION") from None
        else:  # fall back to handing the inputs out in order
            values = inputs[next_input: next_input + o["bands"]]
            next_input += o["bands"]
        if len(values) != o["bands"]:
            raise ServiceError(400, f"Output {o['id']} declares {o['bands']} bands but evaluatePixel returns "
                                  f"{len(values)}", "RENDERER_EXCEPTION")
        if o["sampleType"] == "AUTO":
            o["sampleType"] = "UINT8"
        if o["sampleType"] not in ("UINT8", "UINT16", "INT8", "INT16", "FLOAT32"):
            raise ServiceError(400, f"Unknown sampleType {o['sampleType']}", "RENDERER_EXCEPTION")
        o["values"] = values
    return Evalscript(inputs, units, outputs, mosaicking, reducer)


def clear_median_reduce(stack: np.ndarray, ok: np.ndarray, cloud: np.ndarray, orbit_cc: list[float],
                        dates: list[dt.date]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``clearMedian`` reducer over orbit samples: (13, H, W) values, dataMask and CLM.

    ``stack`` (N, 13, H, W), ``ok`` (dataMask) and ``cloud`` (CLM) (N, H, W), one cloud cover and
    date per orbit. Per band the lower median of the clear samples; where none is clear, the valid
    sample of the least-cloudy orbit (earliest on a tie) with CLM set; zeros where no data.
    """
    n = stack.shape[0]
    if n == 0:
        h, w = stack.shape[2:]
        return np.zeros((13, h, w), np.float32), np.zeros((h, w), bool), np.zeros((h, w), bool)
    clear = ok & ~cloud
    rank = np.empty(n, dtype=np.int64)
    rank[sorted(range(n), key=lambda i: (orbit_cc[i], dates[i]))] = np.arange(n)
    fallback = np.argmin(np.where(ok, rank[:, None, None], n), axis=0)
    valid = ok.any(axis=0)
    no_clear = valid & ~clear.any(axis=0)
    out = np.zeros(stack.shape[1:], dtype=stack.dtype)
    for b in range(stack.shape[1]):
        med, _ = lower_median_of_clear(stack[:, b], clear)
        first = np.take_along_axis(stack[:, b], fallback[None], axis=0)[0]
        out[b] = np.where(no_clear, first, np.where(valid, med, 0))
    return out, valid, no_clear
