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
        self._carried: tuple[str, str] | None = None
        self._crossed = False  # unpickled: _carried stands for the cause

    def __str__(self) -> str:
        text = f"{self.message}: {self.where!r}" if self.where else self.message
        cause = self._cause()
        if cause is not None and cause[1] not in text:
            text += f": {cause[0]}: {cause[1]}"
        return text

    def _cause(self) -> tuple[str, str] | None:
        """The chained cause's type name and words, if it has any."""
        if self._crossed:
            return self._carried
        cause = self.__cause__
        return (type(cause).__name__, str(cause)) if cause is not None and str(cause) else None

    def __reduce__(self) -> tuple[object, ...]:
        # A cause does not cross a process boundary (an ingest worker's error
        # arrives chained to the worker's traceback instead): its words do, so
        # the error reads the same in either process.
        state = {k: v for k, v in self.__dict__.items() if k not in ("_carried", "_crossed")}
        return (_rebuilt, (type(self), self.args, state, self._cause()))


def _rebuilt(
    kind: type[AggregatorError],
    args: tuple[object, ...],
    state: dict[str, object],
    cause: tuple[str, str] | None,
) -> AggregatorError:
    error = kind.__new__(kind)
    error.args = args
    error.__dict__.update(state)
    error._carried = cause
    error._crossed = True
    return error


class ConfigError(AggregatorError):
    """The configuration is unreadable or invalid; ``where`` is ``file: key``."""

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}"
        cause = self._cause()
        if cause is not None and cause[1] not in text:
            text += f" ({cause[1]})"
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
