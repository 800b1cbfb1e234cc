"""Schema-driven fuzzing (schemathesis) of every operation in /openapi.json against a real
server: whatever the parameters and bodies, no answer is a 5xx. Runs with an admin key, so the
requests reach the handlers rather than stopping at authentication.

Driven through hypothesis directly (schemathesis's pytest plugin does not run on pytest 9)."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from copytrace.server.app import ServerConfig

from .test_server import Server, _keys, leftovers

EXAMPLES_PER_OPERATION = 25


@pytest.mark.slow
def test_no_operation_answers_5xx(tmp_path, photo_paths):
    root = tmp_path / "db"
    s = Server(root, ServerConfig(max_upload_mb=2, rate_per_min=0), _keys(root))
    try:
        assert s.call("POST", "/api/works?filename=a.jpg", photo_paths[0].read_bytes())[0] == 201
        schema = schemathesis.openapi.from_url(s.url + "/openapi.json")
        headers = {"Authorization": f"Bearer {s.keys['admin']}"}
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) >= 15
        seen: dict[str, set[int]] = {}
        for op in operations:
            @given(case=op.as_strategy())
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def fuzz(case):
                r = case.call_and_validate(headers=headers, checks=[not_a_server_error],
                                           timeout=60)
                seen.setdefault(f"{op.method.upper()} {op.path}", set()).add(r.status_code)

            fuzz()
        assert all(code < 500 for codes in seen.values() for code in codes), seen
        print({k: sorted(v) for k, v in sorted(seen.items())})
        assert s.call("GET", "/api/health", key=None)[0] == 200
    finally:
        s.close()
    assert leftovers(root) == []
