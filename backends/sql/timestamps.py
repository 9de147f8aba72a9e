"""``applied_at`` as read back from a version table (standard library only: the read path uses it too)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def to_datetime(value: Any) -> datetime | None:
    """``applied_at`` as an aware UTC datetime, whatever the dialect stored (naive values are UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    else:
        try:
            result = datetime.fromisoformat(str(value).strip())
        except ValueError:
            return None
    return result.replace(tzinfo=UTC) if result.tzinfo is None else result.astimezone(UTC)
