"""Story aggregator: many feeds in, one Atom feed out, one entry per event."""

__version__ = "0.1.0"
