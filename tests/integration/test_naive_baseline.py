"""The benchmark's naive baseline (bench/naive_services.py) does the
pipeline's job, so that the drain's ratio against it compares like with
like: every order it is told of is confirmed, priced quantity x unit price
half-up to the cent, stored and printed. Run here on stock nameko's
ServiceRunner against the real broker and database."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import create_engine, text

from bench.naive_services import NaiveGenerator, NaiveProcessor
from harness.processes import wait_until
from order_pipeline.times import parse_iso_z


@pytest.fixture
def naive_pipeline(db_uri, amqp_uri):
    config = {"AMQP_URI": amqp_uri, "DB_URI": db_uri}
    runner = ServiceRunner(config)
    runner.add_service(NaiveGenerator)
    runner.add_service(NaiveProcessor)
    runner.start()
    try:
        yield config
    finally:
        runner.stop()


def test_each_order_created_is_confirmed_priced_stored_and_printed(naive_pipeline, db_uri, capsys):
    with ClusterRpcProxy(naive_pipeline) as rpc:
        created = [rpc.naive_generator.create_order(quantity) for quantity in (1, 7, 100)]
        assert rpc.naive_generator.get_order(created[1]["id"]) == created[1]
        assert rpc.naive_generator.get_order(999) is None

    engine = create_engine(db_uri)
    try:

        def stored():
            with engine.connect() as connection:
                rows = connection.execute(
                    text(
                        "SELECT order_id, unit_price, execution_price, order_created_at "
                        "FROM order_process ORDER BY order_id"
                    )
                ).all()
            return rows if len(rows) == len(created) else None

        rows = wait_until(stored, 30, message="the three orders processed")
    finally:
        engine.dispose()

    printed = capsys.readouterr().out
    for order, (order_id, unit_price, execution_price, order_created_at) in zip(created, rows):
        assert order_id == order["id"]
        assert Decimal("90") <= unit_price <= Decimal("110")  # the default market's band
        expected = (order["quantity"] * unit_price).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert execution_price == expected
        assert order_created_at == parse_iso_z(order["created_at"])
        assert f"Order {order_id} OrderExecutionPrice {expected}\n" in printed
