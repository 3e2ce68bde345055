"""Choosing a provider by name, always wrapped in the disk cache."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from lulc_core.cache import SceneCache
from lulc_core.errors import CredentialsError, ProviderError
from lulc_core.providers.base import CachingProvider
from lulc_core.providers.demo import DemoProvider
from lulc_core.providers.local import LocalFilesProvider
from lulc_core.collection import DEFAULT_COLLECTION, get_collection
from lulc_core.settings import load_settings

#: The provider kinds :func:`make_provider` knows (the CLI's --provider choices), the default first.
PROVIDERS = ("demo", "local", "sentinelhub")
DEFAULT_PROVIDER = PROVIDERS[0]


def make_provider(kind: str = DEFAULT_PROVIDER, scenes: str | Path | None = None, cache: SceneCache | None = None,
                  collection: str = DEFAULT_COLLECTION, env: Mapping[str, str] | None = None,
                  secrets: Mapping[str, str] | None = None) -> CachingProvider:
    """A cached provider: ``demo`` (bundled scenes), ``local`` (``scenes`` folder) or
    ``sentinelhub`` (credentials from :func:`~lulc_core.settings.load_settings`: ``env``, then ``secrets``)."""
    cache = cache or SceneCache()
    collection = get_collection(collection)
    if kind == "demo":
        return CachingProvider(DemoProvider(), cache)
    if kind == "local":
        if not scenes:
            raise ProviderError("the local provider needs a scenes folder (--scenes DIR)")
        return CachingProvider(LocalFilesProvider(Path(scenes), name="local"), cache)
    if kind == "sentinelhub":
        from lulc_core.providers.sentinelhub import SentinelHubProvider, SentinelHubSettings

        settings = SentinelHubSettings.from_settings(load_settings(env=env, secrets=secrets))
        if not settings.has_credentials:
            raise CredentialsError("no Sentinel Hub credentials: set SH_CLIENT_ID and SH_CLIENT_SECRET "
                                   "(environment or .streamlit/secrets.toml); SH_ENDPOINT=cdse|sentinelhub")
        return CachingProvider(SentinelHubProvider(settings, collection=collection), cache)
    raise ProviderError(f"unknown provider {kind!r}; choose from {', '.join(PROVIDERS)}")
