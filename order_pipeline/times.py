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
