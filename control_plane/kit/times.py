"""Date-times as the API states them: always with a zone, UTC. (SQLite and MongoDB hand
back naive values even from zone-aware columns; the API's schema says ``date-time``,
which RFC 3339 requires to carry an offset.)"""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _a_date_time(value: object) -> object:
    # Pydantic would also read a number ("0.5") as Unix time; the document says date-time.
    if isinstance(value, int | float) or (isinstance(value, str) and _numeric(value)):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2026-12-01T09:00:00Z")
    return value


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
# A date-time a client sends (a query's bound): RFC 3339 only, read as UTC if it has no zone.
DateTimeIn = Annotated[datetime, BeforeValidator(_a_date_time), AfterValidator(as_utc)]
