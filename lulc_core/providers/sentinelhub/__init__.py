"""Sentinel Hub provider: ``settings`` (where and how), ``evalscript`` (what is asked for),
``provider`` (search and fetch), ``errors`` (client failures as lulc_core errors), ``deadline``
(a total time per request) and ``logs`` (secrets out of logs)."""

from lulc_core.providers.sentinelhub.costs import PROCESS_API_MAX_PX as MAX_PX
from lulc_core.providers.sentinelhub.errors import client_errors, map_error
from lulc_core.providers.sentinelhub.evalscript import (COMPOSITE_REDUCER, COMPOSITE_VERSION, EVALSCRIPT_VERSION,
                                                        composite_evalscript, evalscript)
from lulc_core.providers.sentinelhub.logs import install_log_redaction, redact
from lulc_core.providers.sentinelhub.provider import SentinelHubProvider
from lulc_core.providers.sentinelhub.settings import ENDPOINTS, SentinelHubSettings

__all__ = ["COMPOSITE_REDUCER", "COMPOSITE_VERSION", "ENDPOINTS", "EVALSCRIPT_VERSION", "MAX_PX", "SentinelHubProvider",
           "SentinelHubSettings", "client_errors", "composite_evalscript", "evalscript", "install_log_redaction",
           "map_error", "redact"]
