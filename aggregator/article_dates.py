"""Dates in article text: full dates with their time of day, date lines, datelines.

A pasted article states when it was published in loose words (``Fri 29 Nov 2024
10.41 GMT``, ``Published November 29, 2024 at 3:05 PM EST``); these rules find
such dates and return them as UTC datetimes. A dateline (``SEOUL, South Korea
(AP) --``) opens the first paragraph and may name the outlet.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["DATE_LABEL", "find_dates", "is_date_line", "split_dateline"]


_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*"
_DATE = re.compile(
    r"\b(?:(?P<y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)"
    r"(?:[T ](?P<iso>\d\d:\d\d(?::\d\d)?)(?:\.\d+)?\s*(?P<off>Z|[+-]\d\d:?\d\d)?)?"
    rf"|(?P<mon1>{_MONTH})\.?\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y1>\d{{4}})"
    rf"|(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<mon2>{_MONTH})\.?,?\s+(?P<y2>\d{{4}}))\b",
    re.IGNORECASE,
)
_TIME = (
    r"(?P<h>\d{1,2})[:.](?P<min>\d\d)(?::\d\d)?"
    r"\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?\s*(?P<tz>[A-Z]{1,4}\b)?"
)
_TIME_AFTER = re.compile(rf",?\s*(?:at\s+)?{_TIME}")  # anchored by match(pos)
_TIME_BEFORE = re.compile(rf"{_TIME}\s*,?\s*(?:[A-Z][a-z]{{2,8}}\.?,?\s*)?$")
# Abbreviations seen in pasted bylines. The US zones without S/D (ET, PT) are taken
# as standard time: wrong by an hour in summer, which only moves ordering slightly.
_ZONES = {
    "UTC": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "ET": -5, "CST": -6, "CDT": -5, "CT": -6,
    "MST": -7, "MDT": -6, "MT": -7, "PST": -8, "PDT": -7, "PT": -8, "BST": 1, "CET": 1,
    "CEST": 2, "EET": 2, "EEST": 3, "MSK": 3, "IST": 5.5, "HKT": 8, "SGT": 8, "KST": 9,
    "JST": 9, "AEST": 10, "AEDT": 11,
}  # fmt: skip
DATE_LABEL = re.compile(
    r"(?i)(?:^|(?<=\s))"
    r"(?P<label>published|posted|updated|last updated|first published|date|modified)\b"
)


def _clock(match: re.Match[str] | None) -> tuple[int, int, timedelta] | None:
    if match is None:
        return None
    hour, minute = int(match["h"]), int(match["min"])
    if match["ampm"]:
        hour = hour % 12 + (12 if match["ampm"][0] in "Pp" else 0)
    offset = _ZONES.get(match["tz"] or "UTC")
    if hour > 23 or minute > 59 or offset is None:
        return None
    return hour, minute, timedelta(hours=offset)


def find_dates(text: str) -> list[datetime]:
    """Every full date stated in *text*, with its time of day where one is beside it.

    A date without a time is taken at noon UTC, so it shows as the same calendar
    day in every time zone from UTC-11 to UTC+11.
    """
    out = []
    for m in _DATE.finditer(text):
        year = m["y"] or m["y1"] or m["y2"]
        month = int(m["m"]) if m["m"] else _month(m["mon1"] or m["mon2"])
        day = int(m["d"] or m["d1"] or m["d2"])
        clock = (12, 0, timedelta(0))
        if m["iso"]:
            hour, minute = m["iso"].split(":")[:2]
            off = (m["off"] or "Z").replace(":", "")
            sign = -1 if off.startswith("-") else 1
            shift = (
                timedelta()
                if off == "Z"
                else sign * timedelta(hours=int(off[1:3]), minutes=int(off[3:5]))
            )
            clock = (int(hour), int(minute), shift)
        elif m["y"] is None:
            near = _clock(_TIME_AFTER.match(text, m.end(), m.end() + 40))
            near = near or _clock(_TIME_BEFORE.search(text[max(0, m.start() - 40) : m.start()]))
            clock = near or clock
        try:
            local = datetime(int(year), month, day, clock[0], clock[1], tzinfo=UTC)
        except ValueError:
            continue
        if 1990 <= local.year <= 2100:
            out.append(local - clock[2])
    return out


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _month(name: str) -> int:
    return _MONTHS.index(name[:3].lower()) + 1


_DATE_NOISE = re.compile(
    r"(?i)\b(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\b|\b(?:at|on)\b|[^\w\s]"
    r"|\b\d+\s*(?:min(?:ute)?s?|hours?|hrs?|days?)\s+ago\b"
)


def is_date_line(text: str) -> bool:
    """A line that only states a date, e.g. ``Fri 29 Nov 2024 10.41 GMT``."""
    if len(text.split()) > 14 or not _DATE.search(text):
        return False
    rest = _DATE.sub(" ", DATE_LABEL.sub(" ", text))
    rest = re.sub(_TIME, " ", rest)
    rest = re.sub(_DATE_NOISE, " ", rest)
    return len(rest.split()) <= 1


_DATELINE = re.compile(
    r"(?P<place>[A-Z][A-Z'\u2019.\-]+(?:\s+[A-Z][A-Z'\u2019.\-]+)*"
    r"(?:,\s*[\w'\u2019.\- ]{1,40}?)*)?\s*"
    r"(?:\((?P<outlet>[A-Z][\w&'\u2019.\- ]{0,40})\)|/(?P<wire>[A-Z][\w ]{1,30})/)?\s*"
    r"(?:\u2014|\u2013|--|-|:)\s+"
)


def split_dateline(text: str) -> tuple[str, str | None]:
    """Strip a dateline off a first paragraph; return the rest and the outlet it names."""
    match = _DATELINE.match(text[:160])
    if not match or not (match["place"] or match["outlet"] or match["wire"]):
        return text, None
    place = match["place"] or ""
    if not (match["outlet"] or match["wire"]) and len(re.sub(r"[^A-Z]", "", place.split()[0])) < 3:
        return text, None  # "U.S. - China talks" is not a dateline
    return text[match.end() :], match["outlet"] or match["wire"]
