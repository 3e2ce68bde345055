"""Every error of the project, with messages meant for the person using the tool (CLI or dashboard).

All derive from :class:`LulcError`, so the CLI prints them as one line and the dashboard as a
plain message. Where a kind of error always ends with the same advice, the error adds it itself.
"""

from __future__ import annotations


class LulcError(Exception):
    """Base class: the message says what went wrong and what to do."""


class AOIError(LulcError, ValueError):
    """An area of interest that can't be used (invalid, too small, too large, unreadable)."""


class DateWindowError(LulcError, ValueError):
    """A date window that can't be used (unparsable, reversed, in the future)."""


class SettingsError(LulcError):
    """A setting (environment or ``.streamlit/secrets.toml``) that can't be used."""


class ThresholdError(LulcError, ValueError):
    """Change thresholds out of their range or an unknown change level."""


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

    @classmethod
    def no_data(cls, source: str, window: object, extra: str = "") -> "NoImageryError":
        """The source's imagery holds no valid pixel over the AOI in ``window``."""
        return cls(f"{source} hold no data over this AOI in {window}{extra}")


class OutsideCoverageError(ProviderError):
    """The AOI lies outside what a provider can serve (e.g. the bundled demo extents)."""


class BudgetError(LulcError):
    """A fetch would pass this server's processing-unit budget (per session or per day)."""


class CacheError(LulcError):
    """A cache entry was unreadable (the cache discards it and the scene is fetched again)."""


class OutputError(LulcError):
    """An output path that would lose data (an input file, a folder) or can't be written."""


#: What to do about any unusable weights file.
USE_PROJECT_WEIGHTS = "use a weights file written by this project (python -m lulc_core train) or the shipped one"


class WeightsError(LulcError, ValueError):
    """A model weights file that can't be used safely (not torch, unsafe pickle, no metadata, mismatch).

    The message is the problem followed by what to do (by default :data:`USE_PROJECT_WEIGHTS`)."""

    def __init__(self, problem: str, fix: str = USE_PROJECT_WEIGHTS) -> None:
        super().__init__(f"{problem}; {fix}" if fix else problem)


class InputError(LulcError, ValueError):
    """Patches that do not meet the classifier's input contract (shape, bands, dtype, values)."""


class InputImageError(LulcError, ValueError):
    """Images that can't be evaluated (too large to decode safely, not RGB, wrong size)."""
