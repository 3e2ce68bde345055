"""A local fake of the Sentinel Hub / CDSE services, for tests and offline development (never shipped).

:class:`FakeSentinelHub` is a real HTTP(S) server on 127.0.0.1 (stdlib ``http.server``, one
thread per request) that speaks enough of the service for the real ``sentinelhub`` client:

- the OAuth2 token endpoint (client-credentials form POST, JWT-shaped tokens, 401
  ``invalid_client`` for wrong credentials);
- Catalog STAC search (``POST {base}/api/v1/catalog/1.0.0/search``) over a scene library read
  with :class:`~lulc_core.providers.local.LocalFilesProvider` (the bundled OSCD demo scenes by
  default): ``bbox``/``intersects``, ``datetime``, ``collections``, a CQL2-text
  ``eo:cloud_cover`` filter, ``limit`` and ``next`` pagination;
- the Process API (``POST {base}/api/v1/process``): bounds (bbox or geometry, EPSG or CRS84),
  width/height (at most 2500 each, as the service) or resx/resy, ``dataFilter`` (timeRange,
  maxCloudCoverage, mosaickingOrder), an evalscript read with regular expressions (never
  executed): the ``setup()`` input bands, units and outputs, and which sample fields
  ``evaluatePixel`` returns per output. Pixels are the library's own scenes resampled (bilinear)
  onto the requested grid with :meth:`SceneSource.read_on_grid`, mosaicked like
  ``LocalFilesProvider.fetch``; ``dataMask`` = all 13 bands > 0 and ``CLM`` =
  :func:`~lulc_core.clouds.bright_cloud_mask`. One output comes back as a GeoTIFF, several as
  ``application/x-tar`` with ``<id>.tif`` each; ``x-processingunits-spent`` follows the
  documented formula. ``sentinel-2-l2a`` serves the same (Level-1C) pixels without B10.
- ORBIT mosaicking (``mosaicking: "ORBIT"`` or ``Mosaicking.ORBIT`` in ``setup()``, where the
  real API takes it): one sample per orbit, i.e. per acquisition date of the library's scenes in
  the time range over the bbox (with maxCloudCoverage applied to each tile, and the tiles of one
  date mosaicked as above). The evalscript is still not executed: ``evaluatePixel(samples,
  scenes)`` must reduce the samples with a reducer the fake knows (``var px =
  clearMedian(samples, scenes);``, defined in the script) and return ``px.<field>`` values or
  constants; the fake then computes that reducer from its data (:data:`ORBIT_REDUCERS`). Other
  ORBIT scripts, and TILE mosaicking, are answered 400.
- Processing units of multi-temporal requests: the service's "number of data samples"
  multiplication factor, i.e. an ORBIT request costs the single-request formula times the number
  of orbits (acquisition dates) over its bbox in the time range (at least 1), with the same
  0.005 PU minimum per request. A SIMPLE request is one sample, as before.

Fault injection (:meth:`FakeSentinelHub.inject`) makes the next request(s) to an endpoint fail
with a status (401, 403, 429 with ``Retry-After`` in milliseconds, 5xx), answer slowly, send a
truncated body, or find nothing. Every request is logged as (method, path, status).

HTTPS or HTTP: requests-oauthlib refuses a plain ``http://`` token URL unless
``OAUTHLIB_INSECURE_TRANSPORT=1``, and the project must never need that variable. The fake
therefore serves HTTPS by default with a self-signed certificate for 127.0.0.1/localhost made
at start-up by the ``openssl`` command-line tool (the ``cryptography`` package is not a
dependency); clients trust it through ``REQUESTS_CA_BUNDLE=<fake.ca_file>`` (the sentinelhub
client calls ``requests`` without a ``verify`` argument, so the environment variable is the
only hook). Where ``openssl`` is missing, or with ``tls=False``, it serves plain HTTP, and only
then must a test set ``OAUTHLIB_INSECURE_TRANSPORT=1`` (with monkeypatch, never globally).

Run it standalone with ``python -m tests.fakes.sentinelhub --port 8765`` (or ``make fake-sh``).

Modules, one per concern: ``server`` (life cycle, TLS, dispatch, log), ``oauth`` (token
endpoint), ``catalog`` (STAC search), ``process`` (Process API), ``evalscript`` (evalscript
parsing and ORBIT reducers), ``faults`` (fault injection), ``common`` (paths and parsing).
"""

from tests.fakes.sentinelhub.common import CATALOG_PATH, ENDPOINT_PATHS, PROCESS_PATH, TOKEN_PATH
from tests.fakes.sentinelhub.evalscript import ORBIT_REDUCERS, clear_median_reduce
from tests.fakes.sentinelhub.faults import NO_PERMISSION_BODY, QUOTA_EXCEEDED_BODY, Fault
from tests.fakes.sentinelhub.server import FakeSentinelHub, make_self_signed_cert

__all__ = ["CATALOG_PATH", "ENDPOINT_PATHS", "NO_PERMISSION_BODY", "ORBIT_REDUCERS", "PROCESS_PATH",
           "QUOTA_EXCEEDED_BODY", "TOKEN_PATH", "Fault", "FakeSentinelHub", "clear_median_reduce",
           "make_self_signed_cert"]
