"""Reading the gateway's console stream (`GET /events`) as a page does."""

import json

import eventlet
import requests


class EventReader:
    """One page's `GET /events`, read event by event."""

    def __init__(self, base_url):
        self.response = requests.get(base_url + "/events", stream=True, timeout=30)
        assert self.response.status_code == 200
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self._lines = self.response.iter_lines(decode_unicode=True)

    def next_snapshot(self):
        name = None
        for line in self._lines:
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: ") and name == "snapshot":
                return json.loads(line[len("data: ") :])

    def snapshot_where(self, condition, timeout=30):
        """The first snapshot for which `condition` holds (within `timeout` s)."""
        deadline = eventlet.Timeout(timeout)
        try:
            while True:
                snapshot = self.next_snapshot()
                if condition(snapshot):
                    return snapshot
        except eventlet.Timeout as timeout_error:
            if timeout_error is not deadline:
                raise
            raise AssertionError(f"no snapshot met the condition within {timeout} s") from None
        finally:
            deadline.cancel()

    def close(self):
        self.response.close()
