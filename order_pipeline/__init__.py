"""Plumbing shared by the order pipeline's services.

Nothing here knows about orders: it is configuration loading, database and
broker checks, schema migration, and the small nameko extensions (a timer
whose interval comes from config, an RPC proxy with a timeout, an event
handler that retries with back-off and dead-letters) that the services use.
"""
