"""The generator's own create_order path, run inside the benchmark process.

`generation.create_order` and then `generation.publish_outbox` with the
generator's RoutedEventPublisher: the order and its outbox row are
committed, then the outbox is published (confirms and `mandatory`) and the
rows routed are removed, as the service does for an RPC call (there the
publishing is the background publisher's pass that the commit wakes).
Calling it in-process lets the latency scenario create orders on a precise
schedule without an RPC round trip per order (~6 ms here even for
`status`), whose jitter would blur the rate.
"""

from nameko_sqlalchemy.database import Session
from sqlalchemy.orm import sessionmaker

from generator_service import generation
from harness.processes import CONFIG
from order_contract import GENERATOR
from order_pipeline.config import load_config
from order_pipeline.extensions.event_publisher import RoutedEventPublisher


class _Container:
    """The two things RoutedEventPublisher reads from its container."""

    def __init__(self, config):
        self.config = config
        self.service_name = GENERATOR


class _Database:
    """`get_session()` like nameko-sqlalchemy's: commits when the `with`
    block ends."""

    def __init__(self, engine):
        self._sessions = sessionmaker(bind=engine, class_=Session)

    def get_session(self):
        return self._sessions(close_on_exit=True)


class InProcessGenerator:
    """`with InProcessGenerator(pipeline) as create: create(5)`: on the
    pipeline's database and broker, over TLS if its settings say so."""

    def __init__(self, pipeline):
        config = load_config(CONFIG)
        config.update(pipeline.settings)
        config.update({"AMQP_URI": pipeline.amqp_uri, "GENERATE_ON_FIRST_START": False})
        self.engine = pipeline.engine()
        self.db = _Database(self.engine)
        self.container = _Container(config)
        self.publisher = RoutedEventPublisher().bind(self.container, "publish")

    def __enter__(self):
        self.publisher.setup()
        return self.create_order

    def __exit__(self, *exc_info):
        self.publisher.stop()
        self.engine.dispose()

    def create_order(self, quantity):
        """The created order as a dict (id, quantity, created_at)."""
        order = generation.create_order(self.db, quantity)
        generation.publish_outbox(self.db, self.publisher.publish)
        return order
