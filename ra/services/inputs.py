"""Input helpers shared by the back-office services: field errors, text and date cleaning."""

from __future__ import annotations

import calendar
import re
from datetime import date

from ra.errors import InvalidInput


class FieldErrors(InvalidInput):
    """Invalid input, field by field: ``errors`` maps a form field name to a French sentence."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(" ".join(errors.values()) or "Saisie invalide.")
        self.errors = dict(errors)


_SPACES = re.compile(r"\s+")


def clean_text(value: str | None) -> str:
    """Strip and collapse runs of whitespace to one space ("" for None)."""
    return _SPACES.sub(" ", value or "").strip()


def optional_text(value: str | None) -> str | None:
    cleaned = clean_text(value)
    return cleaned or None


def fr_date(value: date) -> str:
    return value.strftime("%d/%m/%Y")


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier, clamped to the end of a shorter month."""
    month_index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(month_index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def required_reason(reason: str | None, *, field: str = "reason", what: str = "Le motif") -> str:
    """A mandatory free-text reason (500 characters at most)."""
    cleaned = clean_text(reason)
    if not cleaned:
        raise FieldErrors({field: f"{what} est obligatoire."})
    if len(cleaned) > 500:
        raise FieldErrors({field: f"{what} compte {len(cleaned)} caractères : 500 au plus."})
    return cleaned


def like_pattern(text: str) -> str:
    """``%text%`` for a case-insensitive search, its LIKE wildcards escaped (escape: backslash)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
