"""Fault suite: every committed order is processed exactly once, whatever
fails in between (processes killed, broker or database restarted, events
lost, duplicated or malformed). Run it alone with `pytest -m faults`."""
