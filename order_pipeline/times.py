"""Moments as the pipeline stores and shows them: naive UTC in the
database's DATETIME columns, ISO 8601 with a `Z` in JSON and headers."""

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, as naive UTC (what DATETIME columns hold)."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso_z(moment: datetime, timespec: str = "microseconds") -> str:
    """`2026-11-29T11:00:19.984126Z`: a naive UTC or an aware datetime."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec=timespec) + "Z"


def iso_z_of_epoch(seconds: float, timespec: str = "milliseconds") -> str:
    """An epoch time (time.time()) as iso_z gives it."""
    return iso_z(datetime.fromtimestamp(seconds, UTC), timespec)


def parse_iso_z(text) -> datetime | None:
    """An ISO 8601 time (`2026-11-29T11:00:19.984126Z`) as naive UTC; None for
    None or anything unreadable."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
