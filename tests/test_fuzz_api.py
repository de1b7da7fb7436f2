"""Issue 16 and 20: a seeded, bounded fuzz of every API operation against the API's own
OpenAPI schema, as a clinic administrator (every write a role may make) and as a patient (the
self-service actions). Every generated request's answer is held to the schema:

- no 5xx (`not_a_server_error`);
- its status is one the operation documents (`status_code_conformance`), and so is its
  content type (`content_type_conformance`): an error is `application/problem+json`;
- its body validates against the documented schema of that status and content type
  (`response_schema_conformance`): a 4xx is a problem document (`clinic.openapi`);
- a request that breaks the schema is refused with a 4xx (`negative_data_rejection`).

The schema is the one `/api/schema/` serves (`test_the_fuzzed_schema_is_the_served_one`),
built once when the module loads; drf-spectacular builds it without a warning
(`test_the_schema_builds_without_warnings`). Cases come from both of schemathesis' modes,
requests that follow the schema and requests that break it, through the real WSGI application
(every middleware, real PostgreSQL and Redis) with real commits. Hypothesis is derandomized
and keeps no example database: the same cases on every run, nothing written into the
repository. `FUZZ_EXAMPLES` cases per operation and role (default 3: over 1,000 cases in all),
a third of those that follow the schema on rows that exist (`_known_ids`); then, for each
collection whose `POST` 201 has links (`clinic.openapi`), `FUZZ_STATEFUL_SCENARIOS` scenarios
(default 5) create a row and follow the links to the row's own operations. The number of
cases run is printed in pytest's summary (`make test` shows it).
"""

import os
from collections import Counter

import pytest
import schemathesis
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import User
from clinic.wsgi import application
from notifications.models import Notification
from practice.models import Patient
from scheduling.models import WorkingHours
from scheduling.tests.factories import build_world
from tests.fixtures import ClinicClient, host_of, in_clinic, refresh_token_for

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
STATEFUL_SCENARIOS = int(os.environ.get("FUZZ_STATEFUL_SCENARIOS", "5"))
ROLES = ["clinic_admin", "patient"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

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


class FuzzReport:
    """The cases each role ran, written in pytest's terminal summary (`make test` shows it)."""

    def __init__(self):
        self.cases: dict[str, int] = {}
        self.statuses: Counter[str] = Counter()  # "2xx", "4xx"...
        self.stateful = 0  # calls of the stateful scenarios
        self.followed = 0  # of which on a row a POST created (a link followed)
        self.operations = len(OPERATIONS)

    def pytest_terminal_summary(self, terminalreporter):
        if not (self.cases or self.stateful):
            return
        total = sum(self.cases.values()) + self.stateful
        by_role = ", ".join(f"{role} {count:,}" for role, count in self.cases.items())
        terminalreporter.write_sep("-", "API fuzz (tests/test_fuzz_api.py)")
        terminalreporter.write_line(
            f"{total:,} generated cases, each checked for 5xx, status, content type and body "
            "against the OpenAPI schema (and a request breaking it refused):"
        )
        if self.cases:
            terminalreporter.write_line(
                f"  {sum(self.cases.values()):,} over the {self.operations} operations "
                f"({FUZZ_EXAMPLES} per operation and role: {by_role})"
            )
        if self.stateful:
            terminalreporter.write_line(
                f"  {self.stateful:,} in stateful scenarios ({STATEFUL_SCENARIOS} per linked "
                f"collection: a POST, then its links; {self.followed:,} answered 2xx on a "
                "created row)"
            )
        answers = ", ".join(f"{n:,} {kind}" for kind, n in sorted(self.statuses.items()))
        terminalreporter.write_line(f"  answers: {answers}")


@pytest.fixture(scope="session")
def fuzz_report(pytestconfig) -> FuzzReport:
    report = FuzzReport()
    pytestconfig.pluginmanager.register(report, "clinic-fuzz-report")
    return report


def _known_ids(world) -> dict[str, int]:
    """The world's rows, by the path segment that names their kind (`appointments`...)."""
    authorization = world.line.authorization
    ids = {
        "appointments": world.alpha_visit.pk,
        "appointment-types": world.visit.pk,
        "authorizations": authorization.pk,
        "lines": world.line.pk,
        "locations": world.downtown.pk,
        "patients": world.patient.pk,
        "practitioners": world.alpha.pk,
        "service-codes": world.line.service_codes.values_list("pk", flat=True).first(),
        "specialties": world.aba.pk,
        "payers": authorization.coverage.payer_id,
        "coverages": authorization.coverage_id,
        "working-hours": WorkingHours.objects.filter(practitioner=world.alpha)
        .values_list("pk", flat=True)
        .first(),
        "notifications": Notification.objects.values_list("pk", flat=True).first(),
    }
    return {kind: pk for kind, pk in ids.items() if pk}


def _on_known_rows(operation, known: dict[str, int]) -> dict[str, int] | None:
    """Path parameters naming rows that exist (`/patients/{id}/` -> the world's patient), or
    None when the path names a kind of row the world has none of."""
    segments = operation.path.strip("/").split("/")
    params = {}
    for kind, segment in zip(segments, segments[1:], strict=False):
        if segment.startswith("{"):
            if kind not in known:
                return None
            params[segment[1:-1]] = known[kind]
    return params or None


def _failures(
    operation, *, base_url: str, token: str, known, statuses: Counter
) -> tuple[int, list[str]]:
    """(cases run, the failed checks of the generated requests to `operation`): requests that
    follow the schema, on the world's rows where the path names some (a stateful walk would
    find them the same way: from the lists) and on generated ids, and requests that break it."""
    found: list[str] = []
    ran = 0
    strategies = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    if (params := _on_known_rows(operation, known)) is not None:

        def on_rows(case):
            drawn = case.path_parameters or {}
            case.path_parameters = {  # of the type the schema gives (a string for `patient_pk`)
                **drawn,
                **{k: str(v) if isinstance(drawn.get(k), str) else v for k, v in params.items()},
            }
            return case

        strategies.insert(0, strategies[0].map(on_rows))
    cases = st.one_of(*strategies)

    @FUZZ_SETTINGS
    @given(case=cases)
    def fuzz(case) -> None:
        nonlocal ran
        ran += 1
        response = case.call(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
        statuses[f"{response.status_code // 100}xx"] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except BaseExceptionGroup as group:  # schemathesis' FailureGroup: the walk goes on
            for failure in group.exceptions:
                title = getattr(failure, "title", type(failure).__name__)
                message = getattr(failure, "message", str(failure))
                found.append(
                    f"{operation.label} -> {response.status_code} "
                    f"{response.headers.get('content-type')}: {title}: {message[:600]}\n"
                    f"    {case.as_curl_command()[:600]}\n    {response.text[:300]}"
                )
        except AssertionError as failure:  # a single failed check
            found.append(f"{operation.label} -> {response.status_code}: {failure}")

    fuzz()
    return ran, found


def test_the_fuzzed_schema_is_the_served_one(acme):
    served = ClinicClient(acme).get("/api/schema/", {"format": "json"})
    assert served.status_code == 200
    assert served.json()["paths"].keys() == API_SCHEMA["paths"].keys()
    methods = {"get", "post", "put", "patch", "delete"}
    writes = [op for op in OPERATIONS if op.method.lower() in methods - {"get"}]
    assert len(writes) >= 40 and len(OPERATIONS) == sum(
        len(methods & set(item)) for item in API_SCHEMA["paths"].values()
    )


def test_the_schema_builds_without_warnings(tmp_path):
    """`manage.py spectacular --validate --fail-on-warn`: no warning, and the OpenAPI 3
    validator accepts the result."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", tmp_path / "api.yaml")


def test_every_error_is_documented_as_a_problem():
    for path, item in API_SCHEMA["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status[0] == "4":
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        status,
                    )
            assert {"401", "403", "429"} <= operation["responses"].keys(), (method, path)


@pytest.mark.parametrize("role", ROLES)
def test_every_generated_request_answers_as_the_schema_says(
    role, committed_acme, make_user, fuzz_report
):
    acme = committed_acme
    user = make_user(acme, role)
    with in_clinic(acme):
        world = build_world()  # rows with small ids for the generated path parameters
        if role == "patient":
            Patient.objects.filter(pk=world.patient.pk).update(user=user)
        known = _known_ids(world)
    base_url = f"http://{host_of(acme)}"
    errors = []
    ran = 0
    for operation in OPERATIONS:
        token = _signed_in(acme, user)
        cases, failed = _failures(
            operation, base_url=base_url, token=token, known=known, statuses=fuzz_report.statuses
        )
        ran += cases
        errors += failed
    fuzz_report.cases[role] = ran
    assert not errors, f"{len(errors)} failed checks:\n" + "\n".join(errors)
    assert ran >= 500  # with the other role's, over 1,000


def _links() -> list[tuple[object, list]]:
    """(creating `POST`, the operations its 201 links to) for every collection with links."""
    by_id = {op.definition.raw["operationId"]: op for op in OPERATIONS}
    found = []
    for item in API_SCHEMA["paths"].values():
        created = item.get("post", {}).get("responses", {}).get("201", {})
        if links := created.get("links"):
            targets = [by_id[link["operationId"]] for link in links.values()]
            found.append((by_id[item["post"]["operationId"]], targets))
    return found


def test_created_rows_answer_as_the_schema_says(committed_acme, make_user, fuzz_report):
    """Stateful: a `POST` that creates a row, then the operations its 201 links to (`GET`,
    `PATCH`, `PUT`, `DELETE` of that row, the answer's `id` in the path), as a clinic admin,
    with the same checks on every answer. Every request is drawn before any is sent (the
    draws never depend on an answer, so the seeded run stays reproducible)."""
    acme = committed_acme
    user = make_user(acme, "clinic_admin")
    with in_clinic(acme):
        build_world()
    linked = _links()
    assert len(linked) >= 15
    base_url = f"http://{host_of(acme)}"
    calls: list[str] = []
    followed: list[str] = []
    errors: list[str] = []

    headers: dict[str, str] = {}  # signed in afresh for each collection

    def send(case):
        response = case.call(base_url=base_url, headers=headers)
        calls.append(f"{case.operation.label} -> {response.status_code}")
        fuzz_report.statuses[f"{response.status_code // 100}xx"] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except BaseExceptionGroup as group:
            errors.extend(f"{calls[-1]}: {failure}" for failure in group.exceptions)
        return response

    for create, targets in linked:
        headers["Authorization"] = f"Bearer {_signed_in(acme, user)}"
        follows = st.tuples(
            *(op.as_strategy(generation_mode=GenerationMode.POSITIVE) for op in targets)
        )

        @settings(FUZZ_SETTINGS, max_examples=STATEFUL_SCENARIOS)
        @given(case=create.as_strategy(generation_mode=GenerationMode.POSITIVE), then=follows)
        def walk(case, then) -> None:
            created = send(case)
            if created.status_code != 201:
                return
            for follow in then:
                follow.path_parameters = {"id": created.json()["id"]}
                if send(follow).status_code < 300:
                    followed.append(calls[-1])

        walk()
    fuzz_report.stateful, fuzz_report.followed = len(calls), len(followed)
    assert not errors, "\n".join(errors)
    assert len(followed) >= 20, calls  # links were followed to rows that exist


def _signed_in(clinic, user: User) -> str:
    """A fresh access token for `user`, active again: an operation walked before (sign out
    everywhere, a password change, deactivation) may have revoked the last one, and every
    operation is to be walked signed in."""
    with in_clinic(clinic):
        User.objects.filter(pk=user.pk).update(is_active=True)
        current = User.objects.get(pk=user.pk)
    return str(refresh_token_for(clinic, current).access_token)
