"""Imported once by the fork server of :class:`~aggregator.workers.WorkerPool`.

Importing this module loads what every worker needs (the parsers, the
language model, English word frequencies), so the workers forked from that
server share one copy of them, and the first feed each gets is not slowed by
loading them. Nothing else imports it.
"""

from __future__ import annotations

import gc

from . import ingest
from .features import idf
from .normalize import detect_language

__all__: list[str] = []

detect_language("A sentence in English to load the language model.")
idf("news")
del ingest
# What is loaded so far lives as long as the server: out of the collector's
# sight, whose passes would write to every object and so copy each page of
# the models into every worker (the gc.freeze docs describe just this case).
gc.freeze()
