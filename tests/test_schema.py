"""The OpenAPI schema and its interactive docs are served, and the schema validates without errors."""

import re

import pytest
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS

pytestmark = pytest.mark.django_db

INVENTORY_MODULES = ("api/auth.py", "api/catalog.py", "api/lots.py", "api/locations.py", "api/vials.py",
                     "api/scan.py", "api/stock.py", "api/inventory_out.py", "api/errors.py")


def test_the_schema_is_served(anon_client):
    response = anon_client.get("/api/schema/")

    assert response.status_code == 200
    assert b"openapi" in response.content


def test_the_schema_describes_the_inventory_calls(anon_client):
    schema = anon_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    for path in ("/api/auth/token", "/api/auth/me", "/api/scan", "/api/receipts", "/api/stock/expiring",
                 "/api/products/", "/api/presentations/", "/api/lots/", "/api/lots/{id}/quarantine/",
                 "/api/lots/{id}/release/", "/api/locations/", "/api/vials/", "/api/vials/{id}/move/",
                 "/api/vials/{id}/waste/", "/api/vials/{id}/return/"):
        assert path in schema["paths"], path


def test_the_interactive_docs_are_served(anon_client):
    response = anon_client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_the_schema_validates_without_errors_or_warnings(tmp_path, capsys):
    GENERATOR_STATS.reset()  # warnings already seen in this process would not be printed again
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))

    err = capsys.readouterr().err
    errors = re.search(r"Errors:\s+(\d+)", err)
    assert errors is None or errors.group(1) == "0", err
    assert (tmp_path / "schema.yml").stat().st_size > 0
    for module in INVENTORY_MODULES:
        assert module not in err, err


def _schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _unbounded(schema: dict, components: dict, path: str, seen: set) -> list[str]:
    """Strings without maxLength (unless an enum or a date) and arrays without maxItems."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _unbounded(components[name], components, path, seen | {name})
    found = []
    for option in schema.get("oneOf", []) + schema.get("anyOf", []) + schema.get("allOf", []):
        found += _unbounded(option, components, path, seen)
    kind = schema.get("type")
    if kind == "string" and "maxLength" not in schema and "enum" not in schema \
            and schema.get("format") not in ("date", "date-time", "decimal", "binary"):
        found.append(path)
    if kind == "array":
        if "maxItems" not in schema:
            found.append(path + "[]")
        found += _unbounded(schema.get("items", {}), components, path + "[]", seen)
    for name, child in schema.get("properties", {}).items():
        found += _unbounded(child, components, f"{path}.{name}", seen)
    return found


def test_every_string_and_list_a_request_body_carries_has_a_stated_bound():
    schema = _schema()
    components = schema["components"]["schemas"]
    unbounded = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                unbounded += _unbounded(media["schema"], components, f"{method.upper()} {path} ", set())

    assert unbounded == []


def test_every_operation_documents_its_refusals_with_the_one_error_body():
    schema = _schema()
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            public = (method, path) == ("post", "/api/auth/token")  # the one call made before logging in
            wanted = {"400", "404"} | (set() if public else {"401", "403"})
            if method in ("post", "put", "patch"):
                wanted |= {"409", "413", "415"}
            for code in wanted:
                content = operation["responses"].get(code, {}).get("content", {})
                if content.get("application/json", {}).get("schema") != {"$ref": "#/components/schemas/ErrorOut"}:
                    missing.append(f"{method.upper()} {path} {code}")

    assert missing == []


def test_the_token_endpoint_documents_its_throttle():
    operation = _schema()["paths"]["/api/auth/token"]["post"]

    assert "429" in operation["responses"]
