"""The gateway's bearer tokens, and what makes one fit to guard it.

A token is refused at start-up, with one line naming its setting, when it is
a known placeholder (`CHANGE-ME` from an example file) or could be guessed:
fewer than TOKEN_MIN_BITS of entropy, estimated from its length and the
kinds of characters in it as if each were drawn at random from them
(`secrets.token_urlsafe(16)` and `secrets.token_hex(16)` both pass, so does
the token `make run` makes; `password123` or a short word does not). The
estimate cannot see a long phrase someone chose, but it stops every weak
token that example files and habits produce.
"""

import math
import string

TOKEN_MIN_BITS = 128
# Fewer distinct characters than this: not random, whatever its length.
MIN_DISTINCT_CHARACTERS = 8
PLACEHOLDER_WORDS = ("change", "replace", "example", "placeholder", "secret", "token", "password")
CHARACTER_KINDS = (
    string.ascii_lowercase,
    string.ascii_uppercase,
    string.digits,
    string.punctuation,
)


def estimated_bits(token: str) -> float:
    """Bits of entropy if each character were drawn at random from the
    kinds of character the token uses."""
    alphabet = sum(len(kind) for kind in CHARACTER_KINDS if any(c in kind for c in token))
    others = {c for c in token if not any(c in kind for kind in CHARACTER_KINDS)}
    alphabet += len(others)
    return len(token) * math.log2(alphabet) if alphabet > 1 else 0.0


def token_problem(token: str) -> str | None:
    """Why `token` must not guard the gateway, or None if it may."""
    folded = token.lower().replace("-", "").replace("_", "")
    if (
        any(word in folded for word in PLACEHOLDER_WORDS)
        and estimated_bits(token) < 2 * TOKEN_MIN_BITS
    ):
        return "it looks like a placeholder from an example; use a random one"
    if len(set(token)) < MIN_DISTINCT_CHARACTERS or estimated_bits(token) < TOKEN_MIN_BITS:
        return (
            f"it is too easy to guess (too short or too repetitive for {TOKEN_MIN_BITS} bits); "
            "make one with `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    if token != token.strip() or any(c.isspace() for c in token):
        return "it holds white space, which an Authorization header cannot carry"
    return None
