"""Imagery providers: one interface (:class:`ImageryProvider`), several sources."""

from lulc_core.providers.base import CachingProvider, ImageryProvider, ProgressFn

__all__ = ["CachingProvider", "ImageryProvider", "ProgressFn"]
