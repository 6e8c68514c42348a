"""gateway/openapi.yaml against the code it documents: the same routes and
methods, the same error codes, and examples that fit their own schemas.

The schema checker (`schema_violations`) lives in tests/support/openapi.py;
the integration tests use it on real responses too.
"""

import inspect
import re

import pytest

from gateway import console_files, errors
from gateway.exposition import ENCODERS
from gateway.http import JsonHttpRequestHandler
from gateway.openapi import openapi_document
from gateway.service import GatewayService
from tests.support.openapi import resolve, response_schema, schema_violations

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def routes_in_code():
    """{(METHOD, "/orders/{order_id}")} from the gateway's entrypoints."""
    routes = set()
    for _, method in inspect.getmembers(GatewayService, inspect.isfunction):
        for entrypoint in getattr(method, "nameko_entrypoints", ()):
            if isinstance(entrypoint, JsonHttpRequestHandler):
                # <order_id>, <string(length=16):group>
                path = re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", entrypoint.url)
                routes.update((verb.strip().upper(), path) for verb in entrypoint.method.split(","))
    return routes


def routes_in_spec(document):
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def error_codes_in_code():
    return (
        {code for _, code in errors.ERRORS.values()}
        | set(errors.HTTP_CODES.values())
        | {errors.INTERNAL_ERROR[1]}
    )


def all_refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from all_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from all_refs(value)


@pytest.fixture(scope="module")
def document():
    return openapi_document()


def test_the_document_is_openapi_3_0(document):
    assert document["openapi"].startswith("3.0.")
    assert document["info"]["title"] and document["info"]["version"]
    assert document["paths"]


def test_every_route_in_the_code_is_documented_and_nothing_else(document):
    assert len(routes_in_code()) >= 7
    assert routes_in_code() == routes_in_spec(document)


def test_path_parameters_are_declared_where_they_appear(document):
    for path, method, operation in operations(document):
        in_path = set(re.findall(r"{(\w+)}", path))
        parameters = [resolve(document, p) for p in operation.get("parameters", [])]
        declared = {p["name"] for p in parameters if p["in"] == "path"}
        assert in_path == declared, (method, path)


def test_every_reference_resolves(document):
    refs = set(all_refs(document))
    assert refs
    for ref in refs:
        assert resolve(document, {"$ref": ref}), ref


# The console's page, files and event stream are the only answers not in JSON.
NOT_JSON = {
    "/": {"text/html"},
    "/console/{asset}": {"text/javascript", "text/css"},
    "/events": {"text/event-stream"},
}
SECURED = {
    "/start",
    "/stop",
    "/orders",
    "/dead-letters/replay",
    "/dead-letters/discard",
    "/dead-letters/groups/{group}/replay",
    "/dead-letters/groups/{group}/discard",
    "/dead-letters/{dead_letter_id}/edit",
}
# Open unless the gateway has a read token: their security is optional.
READS = {
    "/status",
    "/metrics",
    "/orders/{order_id}",
    "/events",
    "/dead-letters",
    "/instances",
    "/timing",
    "/dead-letters/groups",
    "/dead-letters/audit",
    "/dead-letters/{dead_letter_id}",
}


def test_every_operation_answers_200_json_and_lists_only_known_statuses(document):
    allowed = {200, 201, 400, 401, 403, 404, 405, 409, 413, 429, 500, 503}
    for path, method, operation in operations(document):
        statuses = {int(status) for status in operation["responses"]}
        assert 200 in statuses and statuses <= allowed, (method, path, statuses)
        if path in NOT_JSON:
            assert set(operation["responses"]["200"]["content"]) == NOT_JSON[path], path
        else:
            assert response_schema(document, path, method, 200)


def test_metrics_documents_its_json_and_the_prometheus_formats_it_sends(document):
    content = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    sent = {content_type.split("; charset")[0] for _, content_type in ENCODERS.values()}
    assert sent == {"text/plain; version=0.0.4", "application/openmetrics-text; version=1.0.0"}
    assert set(content) == {"application/json"} | sent
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/Metrics"}


def test_the_console_files_documented_are_those_served(document):
    (parameter,) = document["paths"]["/console/{asset}"]["get"]["parameters"]
    assert set(parameter["schema"]["enum"]) == set(console_files.ASSETS)
    served = {kind.split(";")[0] for kind in console_files.ASSETS.values()}
    assert served == NOT_JSON["/console/{asset}"]
    assert console_files.PAGE[1].split(";")[0] == "text/html"


def test_control_operations_need_the_token_and_reads_may_and_both_document_refusals(document):
    for path, method, operation in operations(document):
        security = operation.get("security", document.get("security")) or []
        statuses = set(operation["responses"])
        control = path in SECURED and method == "post"
        read = path in READS and method == "get"
        if control:
            assert security == [{"bearerAuth": []}], path
            assert {"401", "403", "429"} <= statuses, path
        elif read:
            assert security == [{}, {"bearerAuth": []}], path
            assert {"401", "429"} <= statuses and "403" not in statuses, path
        else:
            assert security == [] and not statuses & {"401", "403", "429"}, (method, path)
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_the_error_codes_are_exactly_those_of_gateway_errors(document):
    documented = set(document["components"]["schemas"]["Error"]["properties"]["error"]["enum"])
    assert documented == error_codes_in_code()


def test_error_responses_use_the_error_body_and_name_known_codes(document):
    codes = error_codes_in_code()
    for name, response in document["components"]["responses"].items():
        content = response["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/Error"}, name
        assert content["example"]["error"] in codes, name
        assert schema_violations(document, content["schema"], content["example"]) == []


def test_money_is_a_decimal_string(document):
    schemas = document["components"]["schemas"]
    money = [
        schemas["Metrics"]["properties"]["average_execution_price"],
        schemas["ProcessingResult"]["properties"]["unit_price"],
        schemas["ProcessingResult"]["properties"]["execution_price"],
    ]
    for field in money:
        assert field["type"] == "string" and field["pattern"]
    assert schema_violations(document, money[0], 12.5)
    assert schema_violations(document, money[0], "12.5")
    assert schema_violations(document, money[0], "12.50") == []


def test_schema_examples_fit_their_schemas(document):
    examples = 0
    for name, schema in document["components"]["schemas"].items():
        if "example" in schema:
            examples += 1
            assert schema_violations(document, schema, schema["example"]) == [], name
    assert examples >= 4


def test_the_checker_rejects_what_the_schemas_forbid(document):
    order = {"$ref": "#/components/schemas/Order"}
    good = {"id": 1, "quantity": 2, "created_at": "2024-05-01T10:00:00.000001Z", "processing": None}
    assert schema_violations(document, order, good) == []
    assert schema_violations(document, order, {**good, "id": "1"})
    assert schema_violations(document, order, {**good, "id": True})
    assert schema_violations(document, order, {**good, "extra": 1})
    assert schema_violations(document, order, {**good, "processing": {"order_id": 1}})
    del good["processing"]
    assert schema_violations(document, order, good)
