"""A small OpenAPI 3.0 schema checker (the subset gateway/openapi.yaml uses:
types, enums, patterns, bounds, required and additional properties, array
items, allOf), for the document's own examples and for real gateway
responses."""

import re

DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
JSON_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
}


def resolve(document, schema):
    while "$ref" in schema:
        node = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def schema_violations(document, schema, value, where="$"):
    """Why `value` does not fit the OpenAPI 3.0 `schema` (empty if it does)."""
    schema = resolve(document, schema)
    if value is None:
        return [] if schema.get("nullable") else [f"{where} is null"]
    problems = []
    for part in schema.get("allOf", []):
        problems += schema_violations(document, part, value, where)
    kind = schema.get("type")
    if kind is not None:
        is_bool = isinstance(value, bool)
        if not isinstance(value, JSON_TYPES[kind]) or (is_bool and kind != "boolean"):
            return problems + [f"{where} is not {kind}: {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append("{} {!r} not in {}".format(where, value, schema["enum"]))
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append("{} {!r} does not match {}".format(where, value, schema["pattern"]))
    if schema.get("format") == "date-time" and not DATE_TIME.match(value):
        problems.append(f"{where} {value!r} is not a date-time")
    if "minimum" in schema and value < schema["minimum"]:
        problems.append("{} {!r} below {}".format(where, value, schema["minimum"]))
    if "maximum" in schema and value > schema["maximum"]:
        problems.append("{} {!r} above {}".format(where, value, schema["maximum"]))
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += schema_violations(document, schema["items"], item, f"{where}[{index}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{where} lacks {name}")
        for name, item in value.items():
            if name in properties:
                problems += schema_violations(document, properties[name], item, f"{where}.{name}")
            elif additional is False:
                problems.append(f"{where} has undocumented {name}")
            elif isinstance(additional, dict):  # a map: every value has this schema
                problems += schema_violations(document, additional, item, f"{where}.{name}")
    return problems


def response_schema(document, path, method, status):
    """The schema the document gives for one response."""
    operation = document["paths"][path][method.lower()]
    response = resolve(document, operation["responses"][str(status)])
    return response["content"]["application/json"]["schema"]
