import pytest
from nameko_sqlalchemy.database import Session
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker


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
