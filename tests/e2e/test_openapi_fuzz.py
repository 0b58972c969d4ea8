"""Schemathesis against the live appliance (every stage on): no 5xx, no response outside
the OpenAPI document, on every operation, with a valid key (the admin key on admin
routes) so that generated requests get past authentication and reach the pipeline.

Bounded for CI: a fixed number of examples per operation and no deadline per example
(two busy cores make single requests slow, not wrong); about two minutes in all.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from appliance.config import load_config
from appliance.server.openapi import openapi_document
from tests.e2e.conftest import ADMIN_KEY, FullAppliance

#: Generated requests per operation (33 operations: about 1,500 requests in all).
EXAMPLES_PER_OPERATION = 50
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def tenant_key(full_appliance: FullAppliance) -> str:
    return full_appliance.key(tenant="fuzz", user="schemathesis")


@pytest.fixture(scope="module")
def api_schema(full_appliance: FullAppliance) -> Any:
    """The document as the live server serves it (its model names included)."""
    return schemathesis.openapi.from_url(full_appliance.url + "/openapi.json")


def _operations() -> list[tuple[str, str]]:
    """Every documented operation, known at collection (one test item each)."""
    with tempfile.TemporaryDirectory() as tmp:
        doc = openapi_document(load_config(None, data_dir=Path(tmp)))
    return sorted((path, method) for path, item in doc["paths"].items() for method in item)


@pytest.mark.parametrize(("path", "method"), _operations())
def test_no_server_error_and_every_response_in_its_schema(
    path: str, method: str, api_schema: Any, full_appliance: FullAppliance, tenant_key: str
) -> None:
    admin = path.startswith("/admin") or path == "/metrics"
    headers = {"Authorization": f"Bearer {ADMIN_KEY if admin else tenant_key}"}
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(base_url=full_appliance.url, headers=headers, checks=CHECKS,
                               timeout=60)

    run()
