"""Reading the request bodies the gateway accepts: `{"ids": [...]}` for
the dead-letter actions, `{"payload": {...}}` for a dead letter's edit,
`{"quantity": n}` for POST /orders.

The body must come with a Content-Length (`gateway.protocol` has already
refused one over MAX_REQUEST_BYTES). A chunked body is refused rather than
read as empty: for a replay, an empty body means "all".
"""

import json

from gateway.errors import BadRequest

ALLOWED_KEYS = {"ids"}
ORDER_EXAMPLE = '{"quantity": 5}'
EDIT_EXAMPLE = '{"payload": {"order_id": 42}}'


def read_ids(request, required: bool) -> list | None:
    """The body's "ids" (checked against the contract by the processor), or
    None when the body is empty or has no ids and they are not required."""
    if request.headers.get("Transfer-Encoding"):
        raise BadRequest('send the JSON body with a Content-Length, e.g. {"ids": [...]}')
    raw = request.get_data(cache=False)
    document = {}
    if raw.strip():
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise BadRequest('the body must be JSON: {"ids": [...]}') from None
    if not isinstance(document, dict) or not set(document) <= ALLOWED_KEYS:
        raise BadRequest('the body must be a JSON object {"ids": [...]}')
    ids = document.get("ids")
    if ids is None and required:
        raise BadRequest('name the dead letters: {"ids": [...]}')
    if ids is not None and not isinstance(ids, list):
        raise BadRequest('"ids" must be a list of dead-letter ids')
    return ids


def read_quantity(request) -> object:
    """The body's "quantity" (checked against the contract by the
    generator): the body must be a JSON object with that key only."""
    if request.headers.get("Transfer-Encoding"):
        raise BadRequest(f"send the JSON body with a Content-Length, e.g. {ORDER_EXAMPLE}")
    raw = request.get_data(cache=False)
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest(f"the body must be JSON: {ORDER_EXAMPLE}") from None
    if not isinstance(document, dict) or set(document) != {"quantity"}:
        raise BadRequest(f"the body must be a JSON object {ORDER_EXAMPLE}")
    return document["quantity"]


def read_edit(request) -> object:
    """The body's "payload" (checked against the contract by the
    processor): the body must be a JSON object with that key only."""
    if request.headers.get("Transfer-Encoding"):
        raise BadRequest(f"send the JSON body with a Content-Length, e.g. {EDIT_EXAMPLE}")
    raw = request.get_data(cache=False)
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest(f"the body must be JSON: {EDIT_EXAMPLE}") from None
    if not isinstance(document, dict) or set(document) != {"payload"}:
        raise BadRequest(f"the body must be a JSON object {EDIT_EXAMPLE}")
    return document["payload"]
