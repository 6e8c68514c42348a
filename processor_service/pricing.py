"""Where unit prices come from, and how an execution price is computed."""

import random
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import requests

from processor_service.exceptions import PriceUnavailable

CENT = Decimal("0.01")
# order_process.unit_price is DECIMAL(16, 4).
UNIT_PRICE_STEP = Decimal("0.0001")
MAX_UNIT_PRICE = Decimal("999999999999.9999")


def execution_price(quantity, unit_price):
    """quantity x unit price, rounded half-up to the cent."""
    return (Decimal(quantity) * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)


class SimulatedMarket:
    """A bounded random walk: each quote moves at most `max_step` (a
    fraction, e.g. 0.005) from the last, and never leaves base x (1 +/- band).
    The same seed gives the same sequence."""

    def __init__(self, base, max_step, band, seed=None):
        if base <= 0 or not 0 <= band < 1 or max_step < 0:
            raise ValueError("need base > 0, 0 <= band < 1 and max_step >= 0")
        self._rng = random.Random(seed)
        self._max_step = Decimal(str(max_step))
        self.low = (base * (1 - Decimal(str(band)))).quantize(UNIT_PRICE_STEP)
        self.high = (base * (1 + Decimal(str(band)))).quantize(UNIT_PRICE_STEP)
        self.price = base.quantize(UNIT_PRICE_STEP)

    def unit_price(self):
        # An integer draw keeps the walk exact and reproducible across platforms.
        step = self._max_step * Decimal(self._rng.randint(-10_000, 10_000)) / 10_000
        moved = (self.price * (1 + step)).quantize(UNIT_PRICE_STEP, rounding=ROUND_HALF_UP)
        self.price = min(max(moved, self.low), self.high)
        return self.price


class HttpPriceFeed:
    """GET `url` -> JSON {"price": "123.45"} (a string or a number)."""

    def __init__(self, url, timeout, session=None):
        self.url = url
        self.timeout = timeout
        self.session = session or requests.Session()

    def unit_price(self):
        try:
            response = self.session.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            price = Decimal(str(response.json(parse_float=Decimal)["price"]))
        except (
            requests.RequestException,
            ValueError,
            KeyError,
            TypeError,
            InvalidOperation,
        ) as exc:
            raise PriceUnavailable(f"price feed {self.url} failed: {exc}") from None
        if not price.is_finite() or not 0 < price <= MAX_UNIT_PRICE:
            raise PriceUnavailable(f"price feed {self.url} gave an unusable price {price}")
        return price.quantize(UNIT_PRICE_STEP, rounding=ROUND_HALF_UP)
