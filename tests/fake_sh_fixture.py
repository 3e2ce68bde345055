"""Pytest fixtures: a running FakeSentinelHub and a SentinelHubProvider pointed at it.

``fake_sh_server`` (module-scoped) starts one fake over the bundled demo scenes; ``fake_sh``
(function-scoped) resets its faults and request log, and makes the process trust its
self-signed certificate (``REQUESTS_CA_BUNDLE``; or, only when the fake had to fall back to
plain HTTP, ``OAUTHLIB_INSECURE_TRANSPORT``), both through monkeypatch so nothing leaks past
the test. ``sh_provider`` is a SentinelHubProvider for it with short sleeps and timeouts.

Use with ``from tests.fake_sh_fixture import *  # noqa``.
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from lulc_core.fake_sentinelhub import FakeSentinelHub
from lulc_core.providers.sentinelhub import SentinelHubProvider, SentinelHubSettings

__all__ = ["fake_sh_server", "fake_sh", "sh_settings", "sh_provider", "make_sh_settings"]


def make_sh_settings(fake: FakeSentinelHub, **overrides) -> SentinelHubSettings:
    """Settings for ``fake`` with test-friendly retries: 2 attempts, 10 ms sleeps, 3 s timeout."""
    kwargs = dict(client_id=fake.client_id, client_secret=fake.client_secret, base_url=fake.base_url,
                  token_url=fake.token_url, max_download_attempts=2, download_sleep_time=0.01, timeout_s=3.0,
                  max_rate_limit_retries=3, rate_limit_default_wait_s=0.05)
    kwargs.update(overrides)
    return SentinelHubSettings(**kwargs)


@pytest.fixture(scope="module")
def fake_sh_server() -> Iterator[FakeSentinelHub]:
    with FakeSentinelHub() as fake:
        yield fake


@pytest.fixture
def fake_sh(fake_sh_server: FakeSentinelHub, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSentinelHub]:
    fake_sh_server.reset()
    if fake_sh_server.ca_file is not None:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake_sh_server.ca_file))
    else:
        monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # plain-HTTP fallback, this test only
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
    monkeypatch.setenv("NO_PROXY", no_proxy)
    monkeypatch.setenv("no_proxy", no_proxy)
    yield fake_sh_server
    fake_sh_server.reset()


@pytest.fixture
def sh_settings(fake_sh: FakeSentinelHub) -> SentinelHubSettings:
    return make_sh_settings(fake_sh)


@pytest.fixture
def sh_provider(sh_settings: SentinelHubSettings) -> SentinelHubProvider:
    return SentinelHubProvider(sh_settings)
