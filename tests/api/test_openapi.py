"""The served Swagger 2.0 definition: valid, complete, and made from the models the handlers use."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from shared.api.swagger import convert
from tests.api.conftest import PUBLIC_BASE_URL, ApiClient, http_functions

# Connective calls these with a per-package token; flows have no business with them, so the
# definition leaves them out (they would only clutter the connector's action list).
NOT_FOR_FLOWS = ("callbacks/",)


def _served_spec(api: ApiClient) -> dict:
    answer = api.call("GET", "/api/openapi.json")
    assert answer.status == 200 and answer.mimetype == "application/json"
    return answer.json()


def _as_pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", path) + "$")


def test_served_definition_is_valid_swagger_2(api: ApiClient) -> None:
    spec = _served_spec(api)
    validate(spec)
    assert spec["swagger"] == "2.0"
    assert (spec["host"], spec["basePath"], spec["schemes"]) == ("signing.example.com", "/api", ["https"])
    assert spec["securityDefinitions"]["functionKey"] == {
        "type": "apiKey", "in": "header", "name": "x-functions-key",
        "description": spec["securityDefinitions"]["functionKey"]["description"]}
    assert spec["paths"]["/health"]["get"]["security"] == []


def test_every_served_route_is_described_and_every_described_path_is_served(api: ApiClient) -> None:
    spec = _served_spec(api)
    described = {(path, method.upper()) for path, item in spec["paths"].items() for method in item
                 if not method.startswith("x-")}
    served = [(route, methods) for _name, route, methods, _fn in http_functions()
              if not route.startswith(NOT_FOR_FLOWS)]
    assert len(served) == 16
    for route, methods in served:
        pattern = _as_pattern("/" + route)
        for method in methods:
            assert any(pattern.match(path) and m == method for path, m in described), f"{method} /{route} missing"
    for path, method in described:
        assert any(_as_pattern("/" + route).match(path) or _as_pattern(path).match("/" + route)
                   for route, methods in served if method in methods), f"{method} {path} is not served"


def test_triggers_follow_the_power_automate_webhook_convention(api: ApiClient) -> None:
    spec = _served_spec(api)
    triggers = {path: item["post"] for path, item in spec["paths"].items()
                if item.get("post", {}).get("x-ms-trigger") == "single"}
    assert "/subscriptions/triggers/package-signed" in triggers and len(triggers) >= 7
    for path in triggers:
        content = spec["paths"][path]["x-ms-notification-content"]
        assert content["schema"]["$ref"].removeprefix("#/definitions/") in spec["definitions"]
    summaries = {operation["summary"] for operation in triggers.values()}
    assert {"When a package is signed", "When a signer signs or rejects", "When an input is rejected"} <= summaries
    for operation in triggers.values():
        assert "Location" in operation["responses"]["201"]["headers"]
        body = next(p for p in operation["parameters"] if p["in"] == "body")
        definition = spec["definitions"][body["schema"]["$ref"].removeprefix("#/definitions/")]
        assert definition["properties"]["url"]["x-ms-notification-url"] is True
        assert definition["properties"]["url"]["x-ms-visibility"] == "internal"
    assert "delete" in spec["paths"]["/subscriptions/{id}"]
    assert spec["paths"]["/packages"]["get"]["x-ms-pageable"] == {"nextLinkName": "nextLink"}


def test_request_models_are_the_handlers_models(api: ApiClient) -> None:
    spec = _served_spec(api)
    create = spec["paths"]["/packages"]["post"]
    body = next(p for p in create["parameters"] if p["in"] == "body")
    package_request = spec["definitions"][body["schema"]["$ref"].removeprefix("#/definitions/")]
    assert package_request["additionalProperties"] is False
    assert {"schemaVersion", "name", "documents", "signers"} <= set(package_request["required"])
    document = package_request["properties"]["documents"]["items"]["properties"]
    assert {"path", "content"} <= set(document)
    assert PUBLIC_BASE_URL.endswith(spec["host"])


def test_converter_handles_what_swagger_2_lacks() -> None:
    assert convert({"anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}], "default": None,
                    "title": "Name"}) == {"type": "string", "maxLength": 5, "x-nullable": True, "x-ms-summary": "Name"}
    text_or_number = convert({"anyOf": [{"type": "integer"}, {"type": "string"}], "default": 0, "description": "d"})
    assert text_or_number == {"type": "string", "default": "0", "description": "d"}
    assert "type" not in convert({"anyOf": [{"type": "integer"}, {"type": "array"}]})
    assert convert({"const": "1", "type": "string"}) == {"enum": ["1"], "type": "string"}
    assert convert({"type": "number", "exclusiveMinimum": 0}) == {"type": "number", "minimum": 0,
                                                                  "exclusiveMinimum": True}
    defs = {"Thing": {"type": "object", "title": "Thing", "description": "A thing.",
                      "properties": {"size": {"type": "integer", "title": "Size"}}},
            "Colour": {"type": "string", "enum": ["red", "blue"], "title": "PaintColour"}}
    # In place, with the field's own label and description winning over the model's.
    assert convert({"$ref": "#/$defs/Thing", "title": "My Thing", "description": "Mine."}, defs) == {
        "type": "object", "x-ms-summary": "My Thing", "description": "Mine.",
        "properties": {"size": {"type": "integer", "x-ms-summary": "Size"}}}
    nested = convert({"type": "object", "properties": {"colours": {"type": "array", "title": "Colours", "items": {
        "anyOf": [{"$ref": "#/$defs/Colour"}, {"type": "null"}]}}}}, defs, {"Colour": {"red": "Red", "blue": "Blue"}})
    assert nested["properties"]["colours"]["items"] == {
        "type": "string", "enum": ["red", "blue"], "x-ms-summary": "Paint Colour", "x-nullable": True,
        "x-ms-enum-values": [{"value": "red", "displayName": "Red"}, {"value": "blue", "displayName": "Blue"}]}
