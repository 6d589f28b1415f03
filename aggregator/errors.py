"""One exception tree for everything the aggregator raises.

::

    AggregatorError              base; ``str()`` names what failed and where
    ├── ConfigError              config.toml: a key, a type, a value, a TOML syntax error
    ├── SourceFailure            one source could not be refreshed (``where`` = URL or path)
    │   ├── FetchError           the network: DNS, refused, timeout, HTTP status, size cap
    │   └── ParseError           bytes that yielded no usable entry
    ├── StorageError             the SQLite state
    └── PublishError             the output feed could not be written

Library errors are wrapped where they enter and chained (``raise ... from exc``),
so the original cause stays in the traceback.
"""

from __future__ import annotations

__all__ = [
    "AggregatorError",
    "ConfigError",
    "FetchError",
    "ParseError",
    "PublishError",
    "SourceFailure",
    "StorageError",
]


class AggregatorError(Exception):
    """Base of every error the aggregator raises.

    ``where`` names the URL, file path or config key the error is about; the
    message reads ``message: 'where'`` with the chained cause appended, as in
    reader's ``FeedError``.
    """

    def __init__(self, where: str, message: str) -> None:
        super().__init__(where, message)
        self.where = where
        self.message = message

    def __str__(self) -> str:
        text = f"{self.message}: {self.where!r}" if self.where else self.message
        cause = self.__cause__
        if cause is not None and str(cause) and str(cause) not in text:
            text += f": {type(cause).__name__}: {cause}"
        return text


class ConfigError(AggregatorError):
    """The configuration is unreadable or invalid; ``where`` is ``file: key``."""

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}"
        cause = self.__cause__
        if cause is not None and str(cause) and str(cause) not in text:
            text += f" ({cause})"
        return text


class SourceFailure(AggregatorError):
    """One source failed; the refresh records it and goes on with the others."""


class FetchError(SourceFailure):
    """A feed URL could not be fetched."""


class ParseError(SourceFailure):
    """Fetched or read bytes held nothing usable."""


class StorageError(AggregatorError):
    """The state database failed; ``where`` is the database path."""


class PublishError(AggregatorError):
    """The output feed could not be written; ``where`` is its path."""
