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




@dataclass(frozen=True)
class LandCoverGroup:
    """A group of EuroSAT classes: change between groups is land-cover change; change between
    classes of one group is named by ``within`` (e.g. crop rotation) and not counted as such."""

    name: str
    colour: str
    classes: tuple[str, ...]
    within: str


#: Group level of the change analysis. The design started from four groups (built-up,
#: agriculture, natural vegetation = Forest + HerbaceousVegetation, water). The shipped model's
#: confusion matrix on the EuroSAT test part argues otherwise for HerbaceousVegetation: it is
#: confused with the agricultural classes 15 times (PermanentCrop 8, Pasture 5, AnnualCrop 2)
#: and with Forest twice; and it is one of the classes that flip with the seasons between
#: crops and grass. So it sits with agriculture ("agriculture and grassland"), and Forest is a
#: group of its own.
LAND_COVER_GROUPS: tuple[LandCoverGroup, ...] = (
    LandCoverGroup("Built-up", "#d7301f", ("Highway", "Industrial", "Residential"), "urban type"),
    LandCoverGroup("Agriculture and grassland", "#e6c84c",
                   ("AnnualCrop", "PermanentCrop", "Pasture", "HerbaceousVegetation"), "crop rotation / season"),
    LandCoverGroup("Forest", "#1f6b2a", ("Forest",), "forest"),
    LandCoverGroup("Water", "#2b6cb0", ("River", "SeaLake"), "water type"),
)
GROUP_NAMES: tuple[str, ...] = tuple(g.name for g in LAND_COVER_GROUPS)
GROUP_COLOURS: tuple[str, ...] = tuple(g.colour for g in LAND_COVER_GROUPS)


def group_of_classes(class_names: tuple[str, ...] = CLASS_NAMES) -> tuple[int, ...]:
    """Group index of each class, in the classes' order."""
    lookup = {c: i for i, g in enumerate(LAND_COVER_GROUPS) for c in g.classes}
    missing = [c for c in class_names if c not in lookup]
    if missing:
        raise ValueError(f"classes without a group: {', '.join(missing)}")
    return tuple(lookup[c] for c in class_names)


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b)."""
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)
