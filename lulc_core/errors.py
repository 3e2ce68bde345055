"""Errors with messages meant for the person using the tool (CLI or dashboard)."""


class LulcError(Exception):
    """Base class: the message says what went wrong and what to do."""


class AOIError(LulcError, ValueError):
    """An area of interest that can't be used (invalid, too small, too large, unreadable)."""


class DateWindowError(LulcError, ValueError):
    """A date window that can't be used (unparsable, reversed, in the future)."""


class ProviderError(LulcError):
    """Imagery could not be searched or fetched."""


class CredentialsError(ProviderError):
    """Credentials missing, refused (401) or without permission (403)."""


class QuotaError(ProviderError):
    """The account's processing units or requests are exhausted (403)."""


class RateLimitError(ProviderError):
    """Still rate limited (429) after the client's retries."""


class NoImageryError(ProviderError):
    """No acquisition matches the area, window and cloud limit."""


class OutsideCoverageError(ProviderError):
    """The AOI lies outside what a provider can serve (e.g. the bundled demo extents)."""


class CacheError(LulcError):
    """A cache entry was unreadable (it is discarded and fetched again)."""


class WeightsError(LulcError, ValueError):
    """A model weights file that can't be used safely (not torch, unsafe pickle, no metadata, mismatch)."""


class InputImageError(LulcError, ValueError):
    """Images that can't be evaluated (too large to decode safely, not RGB, wrong size)."""
