"""The 10 EuroSAT land-use / land-cover classes, in the model's output order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LandCoverClass:
    """One EuroSAT class: its name, a display colour (hex) and a one-line description."""

    name: str
    colour: str
    description: str


EUROSAT_CLASSES: tuple[LandCoverClass, ...] = (
    LandCoverClass("AnnualCrop", "#e6c84c", "Arable fields under annual crops"),
    LandCoverClass("Forest", "#1f6b2a", "Closed tree cover"),
    LandCoverClass("HerbaceousVegetation", "#9acd62", "Natural grass and shrubs"),
    LandCoverClass("Highway", "#8c8c8c", "Major roads and their surroundings"),
    LandCoverClass("Industrial", "#a0338f", "Industrial and commercial buildings"),
    LandCoverClass("Pasture", "#c6e38a", "Grazed grassland"),
    LandCoverClass("PermanentCrop", "#d98c2b", "Orchards, vineyards, olive groves"),
    LandCoverClass("Residential", "#e0453a", "Housing and settlements"),
    LandCoverClass("River", "#3d8fd9", "Rivers and canals"),
    LandCoverClass("SeaLake", "#1b3f8f", "Open water: sea and lakes"),
)

CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in EUROSAT_CLASSES)
CLASS_COLOURS: tuple[str, ...] = tuple(c.colour for c in EUROSAT_CLASSES)
NUM_CLASSES = len(CLASS_NAMES)


def class_index(name: str) -> int:
    """Index of a class name in the model's order; raises ValueError for an unknown name."""
    try:
        return CLASS_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown class {name!r}; expected one of {', '.join(CLASS_NAMES)}") from None


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b)."""
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)
