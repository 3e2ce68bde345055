"""Input recipes: how Level-1C DN become the values a set of weights was trained on.

A weights file names its recipe in its metadata (``WeightsMetadata.recipe``); the classifiers
look it up here (:func:`recipe_for`) and apply the typed :class:`InputRecipe` it names, so the
recipe travels with the weights instead of being assumed by the code that runs them. A weights
file whose recipe is not registered is refused with the list of known ones
(:class:`~lulc_core.errors.WeightsError`, raised when the weights are read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from lulc_core.bands import EUROSAT_RGB_CLIP_DN, RGB_BANDS, eurosat_rgb_recipe
from lulc_core.errors import WeightsError


@dataclass(frozen=True)
class InputRecipe:
    """A named input recipe: the bands it reads (in channel order) and the DN -> uint8 mapping."""

    name: str
    bands: tuple[str, ...]
    description: str
    transform: Callable[[np.ndarray, np.ndarray | None], np.ndarray]

    def apply(self, dn: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """DN of :attr:`bands` -> uint8 model values, elementwise (any shape; ``valid`` broadcasts
        against it, False = nodata)."""
        return self.transform(dn, valid)


EUROSAT_RGB = InputRecipe(
    name="eurosat_rgb",
    bands=RGB_BANDS,
    description=(f"EuroSAT RGB: {','.join(RGB_BANDS)} L1C DN clipped to 0..{EUROSAT_RGB_CLIP_DN:g}, "
                 "scaled to 1..255 (0 = nodata)"),
    transform=eurosat_rgb_recipe,
)

#: Known recipes by name and by the description text that weights metadata carries.
RECIPES: dict[str, InputRecipe] = {}
for _r in (EUROSAT_RGB,):
    RECIPES[_r.name] = _r
    RECIPES[_r.description] = _r


def recipe_for(meta) -> InputRecipe:
    """The recipe a weights file's metadata names, checked against the bands it declares
    (:class:`WeightsError` when unknown or mismatched)."""
    recipe = RECIPES.get(str(meta.recipe).strip())
    if recipe is None:
        known = "; ".join(sorted({r.name for r in RECIPES.values()}))
        raise WeightsError(f"the weights use an unknown input recipe {meta.recipe!r}; known recipes: {known}")
    if tuple(meta.bands) != recipe.bands:
        raise WeightsError(f"the weights declare bands {', '.join(meta.bands)} but recipe {recipe.name} "
                         f"reads {', '.join(recipe.bands)}")
    return recipe
