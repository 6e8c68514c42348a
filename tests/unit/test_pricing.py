from decimal import Decimal

import pytest
import requests

from processor_service.exceptions import PriceUnavailable
from processor_service.pricing import HttpPriceFeed, SimulatedMarket, execution_price


@pytest.mark.parametrize(
    "quantity, unit_price, expected",
    [
        (1, "2.005", "2.01"),  # half-up, where banker's rounding gives 2.00
        (1, "2.015", "2.02"),
        (3, "0.1235", "0.37"),  # 0.3705
        (5, "0.0010", "0.01"),  # 0.005 rounds up
        (100, "101.2345", "10123.45"),
        (1_000_000, "999.9999", "999999900.00"),
    ],
)
def test_execution_price_is_quantity_times_unit_price_rounded_half_up(
    quantity, unit_price, expected
):
    price = execution_price(quantity, Decimal(unit_price))
    assert isinstance(price, Decimal)
    assert price == Decimal(expected)
    assert price.as_tuple().exponent == -2


def test_simulated_market_is_reproducible_with_a_seed():
    first = SimulatedMarket(Decimal("100"), Decimal("0.01"), Decimal("0.1"), seed="s")
    second = SimulatedMarket(Decimal("100"), Decimal("0.01"), Decimal("0.1"), seed="s")
    assert [first.unit_price() for _ in range(50)] == [second.unit_price() for _ in range(50)]


def test_simulated_market_walks_in_small_steps_within_its_band():
    market = SimulatedMarket(Decimal("100"), Decimal("0.05"), Decimal("0.1"), seed=1)
    previous = Decimal("100")
    prices = []
    for _ in range(2000):
        price = market.unit_price()
        assert isinstance(price, Decimal)
        assert Decimal("90") <= price <= Decimal("110")
        assert abs(price - previous) <= previous * Decimal("0.05") + Decimal("0.0001")
        previous = price
        prices.append(price)
    # It moves, and reaches both edges of the band over a long walk.
    assert len(set(prices)) > 100
    assert min(prices) == Decimal("90.0000") and max(prices) == Decimal("110.0000")


def test_simulated_market_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        SimulatedMarket(Decimal("0"), Decimal("0.01"), Decimal("0.1"))
    with pytest.raises(ValueError):
        SimulatedMarket(Decimal("10"), Decimal("0.01"), Decimal("1.5"))


class FakeResponse:
    def __init__(self, status, text):
        self.status_code = status
        self.text = text

    def raise_for_status(self):
        if self.status_code >= 400:
            raise requests.HTTPError(f"{self.status_code} error")

    def json(self, **kwargs):
        import json

        return json.loads(self.text, **kwargs)


class FakeSession:
    def __init__(self, response=None, error=None):
        self.response, self.error, self.calls = response, error, []

    def get(self, url, timeout):
        self.calls.append((url, timeout))
        if self.error:
            raise self.error
        return self.response


@pytest.mark.parametrize(
    "body, expected",
    [
        ('{"price": "123.45"}', "123.4500"),
        ('{"price": 99.123456}', "99.1235"),  # a JSON number is read as Decimal, not float
    ],
)
def test_http_feed_reads_the_price_as_decimal(body, expected):
    session = FakeSession(FakeResponse(200, body))
    feed = HttpPriceFeed("http://feed/price", timeout=1.5, session=session)
    assert feed.unit_price() == Decimal(expected)
    assert session.calls == [("http://feed/price", 1.5)]


@pytest.mark.parametrize(
    "session",
    [
        FakeSession(error=requests.ConnectTimeout("slow")),
        FakeSession(error=requests.ConnectionError("refused")),
        FakeSession(FakeResponse(500, '{"price": "1"}')),
        FakeSession(FakeResponse(200, "not json")),
        FakeSession(FakeResponse(200, '{"cost": "1"}')),
        FakeSession(FakeResponse(200, '{"price": "abc"}')),
        FakeSession(FakeResponse(200, '{"price": "-1"}')),
        FakeSession(FakeResponse(200, '{"price": "0"}')),
        FakeSession(FakeResponse(200, '{"price": "NaN"}')),
        FakeSession(FakeResponse(200, '["price"]')),
    ],
)
def test_http_feed_failures_are_price_unavailable_never_a_made_up_price(session):
    with pytest.raises(PriceUnavailable):
        HttpPriceFeed("http://feed/price", timeout=1, session=session).unit_price()
