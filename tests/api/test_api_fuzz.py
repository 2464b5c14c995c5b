"""The OpenAPI schema, fuzzed: whatever a client sends, the API never answers 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings


@pytest.fixture
def api_schema(sqlite_backend, monkeypatch, legacy_in_production):
    monkeypatch.setenv("API_KEYS", "fuzz-key")
    from core.config import reset_settings

    reset_settings()
    legacy_in_production()
    from api.app import create_app

    app = create_app(start_background=False)
    app.state.catalog.refresh()
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    for headers in ({"X-API-Key": "fuzz-key"}, {}):
        response = case.call(headers=headers)
        assert response.status_code < 500, (case.method, case.path, response.text)
