"""PRICE_SOURCE=http: prices come from a real HTTP feed, and while the feed
fails no order is stored with a made-up price: it waits and is retried."""

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.processes import wait_until
from harness.tables import order_count, processed_count, sql, wrong_prices


class PriceFeed:
    """A local feed whose answer the test controls."""

    def __init__(self):
        self.price = None  # None: answer 503
        self.requests = 0
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                feed.requests += 1
                if feed.price is None:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps({"price": feed.price}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/price"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feed():
    feed = PriceFeed()
    yield feed
    feed.close()


def test_orders_wait_for_the_feed_and_then_get_its_price(pipeline, db_uri, feed):
    system = pipeline(
        ORDER_INTERVAL_SECONDS=0.5,
        PRICE_SOURCE="http",
        PRICE_FEED_URL=feed.url,
        PRICE_FEED_TIMEOUT_SECONDS=1,
        RETRY_FIRST_DELAY_SECONDS=0.2,
        RETRY_MAX_DELAY_SECONDS=0.5,
    ).start()
    wait_until(
        lambda: order_count(db_uri) >= 3 and feed.requests >= 3,
        60,
        message="orders while the feed is down",
    )
    assert processed_count(db_uri) == 0  # nothing stored without a price

    feed.price = "123.4567"
    system.post("/stop").raise_for_status()  # no order comes once it answers
    wait_until(
        lambda: processed_count(db_uri) == order_count(db_uri),
        60,
        message="orders processed once the feed is back",
    )
    prices = {row[0] for row in sql(db_uri, "SELECT unit_price FROM order_process")}
    assert prices == {Decimal("123.4567")}
    assert wrong_prices(db_uri) == []
    assert "retrying in" in system.processor.output()
