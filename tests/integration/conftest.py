import pytest
from nameko_sqlalchemy.database import Session
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from tests.support.services import InProcessServices


class SessionFactory:
    """What the services' `db` dependency offers: get_session(), which
    commits on leaving its `with` block."""

    def __init__(self, db_uri):
        self.uri = db_uri
        self.engine = create_engine(db_uri)
        self._make = sessionmaker(bind=self.engine, class_=Session)

    def get_session(self):
        return self._make(close_on_exit=True)


@pytest.fixture
def db(db_uri):
    factory = SessionFactory(db_uri)
    yield factory
    factory.engine.dispose()


@pytest.fixture
def services(db_uri, amqp_uri):
    """The services in this process, on the test's own database and vhost,
    none started: the test starts the ones it needs
    (`services.start("generator", "gateway")`). Every one still running is
    stopped after the test. A module whose tests all want the three running
    overrides it:

        @pytest.fixture
        def services(services):
            return services.start("generator", "processor", "gateway")
    """
    with InProcessServices(db_uri, amqp_uri) as running:
        yield running
