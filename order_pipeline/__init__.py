"""Plumbing shared by the order pipeline's services, by role:

- `order_pipeline.extensions`: the nameko extensions the services are built
  from, where nameko's own fall short: entrypoints (`rpc`, `timer`,
  `reliable_events`, `batch_events`), dependency providers (`rpc_proxy`,
  `checked_database`, `event_publisher`, `shared_batches`, `tracing`,
  `runtime_metrics`, `service_settings`), `heartbeats` (both: every
  instance's heartbeat, and the entrypoint that takes them) and the service
  container (`containers`).
- `order_pipeline.commands`: what an operator runs (`python -m
  order_pipeline.commands.<name>`): `migrate`, `probe`, `shell`,
  `recreate_queues`, `provision`. Commands know the project (its services'
  names and queues, from the contract) but import no service.
- small helpers, used by both: configuration (`config`, `settings`),
  `broker`, `database`, `queues`, `transactions`, `logs`, `trace_context`,
  `times`, `version`, `errors`, dead letters (`dead_letters`, `failures`,
  `scrub`), and who may do what (`identities`, applied through
  `broker_admin` and `database_admin`).
- `nameko_internals` and `eventlet_internals`: every use of those libraries'
  private code, each with its canary test (tests/unit/test_library_internals.py).

No module here imports a service, and none knows an order's shape; each
service's own settings live in that service. `lint-imports` checks both,
and that helpers import no extension and no command.
"""
