"""Property-based API testing from the OpenAPI document (schemathesis): no input makes the service fail.

Every operation gets positive (schema-valid) and negative (schema-violating) generated requests,
sent with the key of a role allowed to run it, so they reach the engine rather than stopping at
the permission check. Every answer must be a documented status of a documented content type,
match its schema, and never be a 5xx.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = 10  # per operation and mode: about 2 x 28 x 10 requests in all
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLE = {
    "/v1/detect": "verifier", "/v1/verify": "verifier", "/v1/galleries/{gallery}/enroll": "enroller",
    "/v1/galleries/{gallery}/consents": "enroller", "/v1/galleries/{gallery}/consents/withdraw": "enroller",
    "/v1/galleries/{gallery}/identify": "investigator", "/v1/leads": "reviewer",
    "/v1/leads/{lead_id}/reviews": "reviewer", "/v1/ledger/verify": "auditor", "/v1/ledger/export": "auditor",
    "/v1/reports/usage": "auditor", "/v1/redact": "verifier",
}


@pytest.fixture(scope="module")
def fuzzed(make_server):
    s = make_server()
    for name, actor, role in [("enroller", "carl", "enroller"), ("verifier", "vera", "verifier"),
                              ("investigator", "ines", "investigator"), ("reviewer", "rita", "reviewer"),
                              ("auditor", "aud", "auditor")]:
        s.add_key(name, actor, role)
    return s


def _exercise(operation, mode: GenerationMode, headers: dict[str, str]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=True)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


def test_no_generated_request_breaks_the_service(fuzzed):
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed.app)
    failures, count = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        headers = fuzzed.headers(ROLE.get(operation.path, "admin"))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            count += 1
            try:
                _exercise(operation, mode, headers)
            except Unsatisfiable:       # nothing to violate in an operation without parameters
                assert mode is GenerationMode.NEGATIVE and not operation.path.startswith("/v1/"), operation.label
            except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report them all
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    assert count >= 2 * 25
    assert not failures, "\n\n".join(failures)
    assert fuzzed.client.post("/v1/ledger/verify", headers=fuzzed.headers("auditor")).json()["ok"]
