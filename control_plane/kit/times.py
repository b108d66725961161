"""Date-times as the API states them: always with a zone, UTC. (SQLite and MongoDB hand
back naive values even from zone-aware columns; the API's schema says ``date-time``,
which RFC 3339 requires to carry an offset.)"""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(as_utc)]
