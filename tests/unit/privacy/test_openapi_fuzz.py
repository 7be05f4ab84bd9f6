"""Schemathesis fuzzes every operation of the OpenAPI schema: no 5xx for admins, and no
route answers anything but 401/403 to a request without a key or with a weaker role."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from tests.unit.helpers import memory_engine
from tests.unit.privacy.test_route_roles import EXEMPT, _routes, declared_roles

from personify.api.app import create_app
from personify.api.deps import ROLES

pytestmark = [pytest.mark.slow]

engine, _ = memory_engine()
assert engine.privacy is not None
TOKENS = {role: engine.privacy.keys.create(role, f"fuzz {role}").token for role in ROLES}
app = create_app(engine, own_engine=False)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


ROUTES = {(m, p): route for m, p, route in _routes(app)}


def _allowed(method: str, path: str) -> frozenset[str] | None:
    found = declared_roles(ROUTES[(method, path)])
    return found(method) if found else None


@schema.parametrize()
@settings(
    max_examples=8,
    derandomize=True,  # the same cases every run (CI must not flake)
    database=None,  # and no .hypothesis folder left in the work tree
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_fuzzed_requests(case: schemathesis.Case) -> None:
    admin = case.call(headers={"Authorization": "Bearer admin"})
    assert admin.status_code < 500, f"{case.method} {case.formatted_path}: {admin.text[:300]}"
    if case.path in EXEMPT or (case.method.upper(), case.path) not in ROUTES:
        return  # open by design, or a method the path does not have (405)
    allowed = _allowed(case.method.upper(), case.path)
    assert allowed is not None, f"{case.method} {case.path} declares no role"
    anonymous = case.call(headers={"Authorization": ""})
    assert anonymous.status_code in (401, 403), f"no key: {anonymous.status_code} on {case.path}"
    for role in sorted(set(ROLES) - allowed):
        weaker = case.call(headers={"Authorization": f"Bearer {TOKENS[role]}"})
        assert weaker.status_code in (401, 403), f"{role}: {weaker.status_code} on {case.path}"
