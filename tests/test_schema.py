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
