"""Issue 16: a seeded, bounded fuzz of every API operation against the API's own OpenAPI
schema, as a clinic administrator (every write a role may make) and as a patient (the
self-service actions): no generated request may answer 5xx (schemathesis'
`not_a_server_error`).

The schema is the one `/api/schema/` serves (`test_the_fuzzed_schema_is_the_served_one`),
built once when the module loads. Cases come from both of schemathesis' modes, requests that
follow the schema and requests that break it, through the real WSGI application (every
middleware, real PostgreSQL and Redis) with real commits. Hypothesis is derandomized and keeps
no example database: the same cases on every run, nothing written into the repository.
`FUZZ_EXAMPLES` cases per operation keep the whole walk near a minute on two cores.
"""

import os

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from accounts.models import User
from clinic.wsgi import application
from practice.models import Patient
from scheduling.tests.factories import build_world
from tests.fixtures import ClinicClient, host_of, in_clinic, refresh_token_for

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2"))

API_SCHEMA = SchemaGenerator(urlconf="clinic.urls_tenants").get_schema(request=None, public=True)
schema = schemathesis.openapi.from_dict(API_SCHEMA)
schema.app = application  # schemathesis' WSGI transport: in-process, no server
OPERATIONS = [result.ok() for result in schema.get_all_operations()]

FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),  # a failure is reported as found, unshrunk
    suppress_health_check=list(HealthCheck),
)


def _server_errors(operation, *, base_url: str, token: str) -> list[str]:
    """The generated requests to `operation` that answered 5xx (empty when none did)."""
    found: list[str] = []
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @FUZZ_SETTINGS
    @given(case=cases)
    def fuzz(case) -> None:
        response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except BaseExceptionGroup:  # schemathesis' FailureGroup: collected, the walk goes on
            found.append(f"{operation.label} -> {response.status_code}: {case.as_curl_command()}")

    fuzz()
    return found


def test_the_fuzzed_schema_is_the_served_one(acme):
    served = ClinicClient(acme).get("/api/schema/", {"format": "json"})
    assert served.status_code == 200
    assert served.json()["paths"].keys() == API_SCHEMA["paths"].keys()
    methods = {"get", "post", "put", "patch", "delete"}
    writes = [op for op in OPERATIONS if op.method.lower() in methods - {"get"}]
    assert len(writes) >= 40 and len(OPERATIONS) == sum(
        len(methods & set(item)) for item in API_SCHEMA["paths"].values()
    )


@pytest.mark.parametrize("role", ["clinic_admin", "patient"])
def test_no_generated_request_answers_5xx(role, committed_acme, make_user):
    acme = committed_acme
    user = make_user(acme, role)
    with in_clinic(acme):
        world = build_world()  # rows with small ids for the generated path parameters
        if role == "patient":
            Patient.objects.filter(pk=world.patient.pk).update(user=user)
    base_url = f"http://{host_of(acme)}"
    errors = []
    for operation in OPERATIONS:
        errors += _server_errors(operation, base_url=base_url, token=_signed_in(acme, user))
    assert errors == []


def _signed_in(clinic, user: User) -> str:
    """A fresh access token for `user`, active again: an operation walked before (sign out
    everywhere, a password change, deactivation) may have revoked the last one, and every
    operation is to be walked signed in."""
    with in_clinic(clinic):
        User.objects.filter(pk=user.pk).update(is_active=True)
        current = User.objects.get(pk=user.pk)
    return str(refresh_token_for(clinic, current).access_token)
