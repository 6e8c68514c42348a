"""The gateway's tokens: which are fit to guard it, who may control and
read with which, what a refusal answers, and how repeated refusals from one
address are slowed down."""

import hashlib
import logging
import re
from types import SimpleNamespace

import pytest

from gateway import auth
from gateway.auth import Access, FailedAttempts, GatewayAccess, challenge
from gateway.errors import Forbidden, TooManyAttempts, Unauthorized
from gateway.settings import GatewayTokens, gateway_tokens
from gateway.tokens import token_problem
from order_contract import validate_actor
from order_pipeline.errors import StartupError

CONTROL = "Ct1-CoNtrol_8mKq2Wx9Zp3Lv8Hc5NtQ"
NEXT = "Nx2-NeXt_CoNtrol9mKq2Wx9Zp3Lv8Hc"
READ = "Rd4-ReAdOnly_7mKq2Wx9Zp3Lv8Hc5Nt"
FREE = 5  # wrong tokens before an address is slowed down


def request(token=None, address="203.0.113.7", scheme="Bearer"):
    headers = {} if token is None else {"Authorization": f"{scheme} {token}"}
    return SimpleNamespace(headers=headers, remote_addr=address, method="POST", path="/stop")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def access(control=(CONTROL,), read=(), clock=None):
    refusals = auth.Counter()
    attempts = FailedAttempts(FREE, clock or Clock())
    return Access(GatewayTokens(control=tuple(control), read=tuple(read)), attempts, refusals)


@pytest.mark.parametrize(
    "token",
    [
        "CHANGE-ME",
        "changeme",
        "REPLACE_WITH_A_SECRET",
        "hunter2",
        "test-token",
        "password123456789012345678",
        "x" * 64,
        "abcdefghabcdefgh",  # 16 letters: 75 bits
        "0123456789abcdef0123",  # 20 hex digits: 80 bits
        "has a space in it and is long enough 12345",
    ],
)
def test_a_weak_or_placeholder_token_is_refused(token):
    assert token_problem(token) is not None


@pytest.mark.parametrize(
    "token",
    [
        "jxJhHl1mJmFoHYils3-NFvFZ",  # secrets.token_urlsafe(18): what make run makes
        "72bba5be7dc95391efcdaf437d274a88",  # secrets.token_hex(16)
        "zignkK9mlbof9EaDip6-5g",  # secrets.token_urlsafe(16)
        CONTROL,
    ],
)
def test_a_random_token_of_128_bits_is_accepted(token):
    assert token_problem(token) is None


def settings(**tokens):
    return {"GATEWAY_TOKEN": "", "GATEWAY_NEXT_TOKEN": "", "GATEWAY_READ_TOKEN": "", **tokens}


@pytest.mark.parametrize(
    ("tokens", "named"),
    [
        ({"GATEWAY_TOKEN": "CHANGE-ME"}, "GATEWAY_TOKEN"),
        ({"GATEWAY_TOKEN": CONTROL, "GATEWAY_NEXT_TOKEN": "Sh0rt1"}, "GATEWAY_NEXT_TOKEN"),
        ({"GATEWAY_READ_TOKEN": "readme"}, "GATEWAY_READ_TOKEN"),
        ({"GATEWAY_NEXT_TOKEN": NEXT}, "GATEWAY_NEXT_TOKEN"),
        ({"GATEWAY_TOKEN": CONTROL, "GATEWAY_READ_TOKEN": CONTROL}, "GATEWAY_READ_TOKEN"),
    ],
)
def test_a_refused_token_stops_start_up_in_one_line_naming_it(tokens, named):
    with pytest.raises(StartupError) as error:
        gateway_tokens(settings(**tokens))
    message = str(error.value)
    assert named in message and "\n" not in message
    for value in tokens.values():
        assert value not in message  # the token itself is never shown


def test_the_tokens_configured():
    tokens = gateway_tokens(
        settings(GATEWAY_TOKEN=CONTROL, GATEWAY_NEXT_TOKEN=NEXT, GATEWAY_READ_TOKEN=READ)
    )
    assert tokens == GatewayTokens(control=(CONTROL, NEXT), read=(READ,))
    assert gateway_tokens(settings()) == GatewayTokens(control=(), read=())


def test_control_takes_the_current_or_the_next_token_during_a_rotation():
    gate = access(control=(CONTROL, NEXT))
    gate.control(request(CONTROL))
    gate.control(request(NEXT))
    with pytest.raises(Unauthorized):
        gate.control(request(READ))


def test_control_says_which_token_acted_by_name_and_fingerprint_never_the_token():
    gate = access(control=(CONTROL, NEXT))
    current, following = gate.control(request(CONTROL)), gate.control(request(NEXT))
    assert current == {
        "name": "control",
        "token": "sha256:" + hashlib.sha256(CONTROL.encode()).hexdigest()[:12],
    }
    assert following["name"] == "control-next"
    assert following["token"] != current["token"]
    for actor in (current, following):
        assert re.fullmatch(r"sha256:[0-9a-f]{12}", actor["token"])
        assert validate_actor(actor) == actor  # what the processor accepts
        assert CONTROL not in str(actor) and NEXT not in str(actor)
    # After the rotation the same token keeps its fingerprint under its new name.
    rotated = access(control=(NEXT,)).control(request(NEXT))
    assert rotated == {"name": "control", "token": following["token"]}


def test_without_a_control_token_control_is_off():
    with pytest.raises(Forbidden, match="disabled"):
        access(control=()).control(request(CONTROL))


def test_every_401_challenges_for_a_bearer_token():
    gate = access()
    with pytest.raises(Unauthorized) as missing:
        gate.control(request())
    assert missing.value.headers["WWW-Authenticate"] == challenge()
    with pytest.raises(Unauthorized) as basic:
        gate.control(request(CONTROL, scheme="Basic"))
    assert basic.value.headers["WWW-Authenticate"] == challenge()
    with pytest.raises(Unauthorized) as wrong:
        gate.control(request("Wr0ng-tOken_9mKq2Wx9Zp3Lv8Hc5NtQ"))
    assert (
        wrong.value.headers["WWW-Authenticate"]
        == 'Bearer realm="order-pipeline", error="invalid_token"'
    )
    with pytest.raises(Unauthorized):
        gate.control(request(CONTROL + "\u00e9"))


def test_reads_are_open_without_a_read_token_and_need_one_with_it():
    access().read(request())
    gate = access(read=(READ,))
    gate.read(request(READ))
    gate.read(request(CONTROL))  # a control token reads too
    with pytest.raises(Unauthorized):
        gate.read(request())
    with pytest.raises(Unauthorized):
        gate.read(request(NEXT))


def test_the_read_token_cannot_control():
    gate = access(read=(READ,))
    with pytest.raises(Forbidden) as refused:
        gate.control(request(READ))
    assert 'error="insufficient_scope"' in refused.value.headers["WWW-Authenticate"]


def test_each_refusal_is_logged_with_the_address_and_counted_never_with_the_token(caplog):
    gate = access()
    wrong = "Wr0ng-tOken_9mKq2Wx9Zp3Lv8Hc5NtQ"
    with caplog.at_level(logging.WARNING, logger="gateway.auth"):
        for token in (None, wrong):
            with pytest.raises(Unauthorized):
                gate.control(request(token, address="198.51.100.4"))
    assert [r.levelno for r in caplog.records] == [logging.WARNING] * 2
    assert all("198.51.100.4" in r.getMessage() for r in caplog.records)
    assert all(wrong not in r.getMessage() for r in caplog.records)
    assert gate.refusals == {"missing": 1, "invalid": 1}


def test_repeated_refusals_from_one_address_are_slowed_down_and_others_are_not():
    clock = Clock()
    gate = access(clock=clock)
    for _ in range(FREE + 3):  # a missing token is no guess: never slowed down
        with pytest.raises(Unauthorized):
            gate.control(request(None, address="192.0.2.1"))
    for _ in range(FREE):
        with pytest.raises(Unauthorized):
            gate.control(request("nope", address="192.0.2.1"))
    with pytest.raises(Unauthorized):  # one over: this one is refused, and blocks
        gate.control(request("nope", address="192.0.2.1"))
    with pytest.raises(TooManyAttempts) as throttled:
        gate.control(request(CONTROL, address="192.0.2.1"))  # even the right token waits
    assert throttled.value.headers == {"Retry-After": "1"}
    gate.control(request(CONTROL, address="192.0.2.2"))  # another address is not slowed

    clock.now += 1.5  # the block is over: each further refusal doubles it
    with pytest.raises(Unauthorized):
        gate.control(request("nope", address="192.0.2.1"))
    with pytest.raises(TooManyAttempts) as longer:
        gate.control(request(CONTROL, address="192.0.2.1"))
    assert longer.value.headers == {"Retry-After": "2"}
    assert gate.refusals["throttled"] == 2

    clock.now += 2.5
    gate.control(request(CONTROL, address="192.0.2.1"))  # a pass clears the record
    assert gate.attempts.retry_after("192.0.2.1") == 0


def test_the_block_is_capped_and_old_refusals_are_forgotten():
    clock = Clock()
    attempts = FailedAttempts(FREE, clock)
    for _ in range(FREE + 20):
        attempts.refused("192.0.2.9")
    assert attempts.retry_after("192.0.2.9") == auth.MAX_BLOCK_SECONDS
    clock.now += auth.MAX_BLOCK_SECONDS + auth.FAILURE_WINDOW_SECONDS
    attempts.refused("192.0.2.9")  # the old ones are out of the window
    assert len(attempts.records["192.0.2.9"].failures) == 1


def test_addresses_remembered_are_bounded(monkeypatch):
    monkeypatch.setattr(auth, "MAX_ADDRESSES", 3)
    attempts = FailedAttempts(FREE, Clock())
    for n in range(5):
        attempts.refused(f"192.0.2.{n}")
    assert list(attempts.records) == ["192.0.2.2", "192.0.2.3", "192.0.2.4"]


def test_with_the_slowdown_off_no_address_is_ever_made_to_wait():
    gate = access(clock=Clock())
    gate.attempts.free_failures = 0
    for _ in range(50):
        with pytest.raises(Unauthorized):
            gate.control(request("nope"))
    gate.control(request(CONTROL))


def test_refusals_are_a_prometheus_counter_by_reason():
    provider = GatewayAccess()
    provider.refusals = auth.Counter({"invalid": 3, "throttled": 1})
    (family,) = provider.collect()
    values = {sample.labels["reason"]: sample.value for sample in family.samples}
    assert family.name == "order_pipeline_gateway_auth_refusals"
    assert values == {"missing": 0, "invalid": 3, "read_only": 0, "throttled": 1}
