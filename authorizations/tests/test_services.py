"""authorization_create / authorization_update: the rules of an authorization and its lines,
without the API in between."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError

from authorizations import services
from authorizations.errors import AuthorizationLineBelowUsageError, AuthorizationLineInUseError
from authorizations.models import Authorization, AuthorizationLine
from authorizations.services import LineSpec
from authorizations.tests import factories as af
from scheduling.tests import factories as f
from tests.fixtures import in_clinic

START = date(2027, 1, 4)


@pytest.fixture
def parts(acme):
    with in_clinic(acme):
        code = f.service_code("97153", 15)
        patient = f.patient()
        yield {"code": code, "patient": patient, "coverage": af.coverage(patient)}


def _create(parts, **changes) -> Authorization:
    fields = {
        "patient": parts["patient"],
        "coverage": parts["coverage"],
        "number": "A-1",
        "start_date": START,
        "end_date": START + timedelta(days=90),
        "lines": [LineSpec(service_codes=[parts["code"]], units_authorized=40, weekly_cap=8)],
        **changes,
    }
    return services.authorization_create(**fields)


def _lines(authorization) -> list[tuple[int, int, int | None]]:
    return list(
        AuthorizationLine.objects.filter(authorization=authorization)
        .order_by("id")
        .values_list("id", "units_authorized", "weekly_cap")
    )


def _errors(raised: pytest.ExceptionInfo) -> set[str]:
    return set(raised.value.message_dict)


def test_authorization_create_writes_the_authorization_and_its_lines(parts):
    created = _create(parts)
    [(line_id, units, cap)] = _lines(created)
    assert (units, cap) == (40, 8)
    line = AuthorizationLine.objects.get(pk=line_id)
    assert list(line.service_codes.all()) == [parts["code"]]
    assert created.status == Authorization.Status.ACTIVE


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end_date": START - timedelta(days=1)}, "end_date"),
        ({"lines": []}, "lines"),
        ({"number": "TAKEN"}, "number"),
        ({"other_patients_coverage": True}, "coverage"),
        ({"lines": [LineSpec(service_codes=[], units_authorized=4, id=1)]}, "lines.0.id"),
    ],
)
def test_authorization_create_refuses_naming_the_field_and_writes_nothing(parts, change, field):
    _create(parts, number="TAKEN")
    if change.pop("other_patients_coverage", False):
        change["coverage"] = af.coverage(f.patient())
    with pytest.raises(ValidationError) as raised:
        _create(parts, **change)
    assert _errors(raised) == {field}
    assert Authorization.objects.count() == 1 and AuthorizationLine.objects.count() == 1


def test_authorization_update_replaces_the_lines(parts):
    authorization = _create(parts)
    [(kept, _, _)] = _lines(authorization)
    code = parts["code"]
    services.authorization_update(
        authorization=authorization,
        data={"notes": "renewed"},
        lines=[
            LineSpec(service_codes=[code], units_authorized=60, weekly_cap=None, id=kept),
            LineSpec(service_codes=[code], units_authorized=12),
        ],
    )
    [first, added] = _lines(authorization)
    assert first == (kept, 60, None) and added[1:] == (12, None)
    services.authorization_update(
        authorization=authorization,
        data={},
        lines=[LineSpec(service_codes=[code], units_authorized=5, id=added[0])],
    )
    assert _lines(authorization) == [(added[0], 5, None)]  # the line left out is removed
    assert Authorization.objects.get(pk=authorization.pk).notes == "renewed"


def test_authorization_update_refuses_a_line_given_twice_or_not_its_own(parts):
    authorization = _create(parts)
    [(line_id, _, _)] = before = _lines(authorization)
    other = _create(parts, number="A-2")
    [(foreign_id, _, _)] = _lines(other)
    own = LineSpec(service_codes=[parts["code"]], units_authorized=40, id=line_id)
    foreign = LineSpec(service_codes=[parts["code"]], units_authorized=4, id=foreign_id)
    for lines, field in (([own, own], "lines.1.id"), ([foreign], "lines.0.id")):
        with pytest.raises(ValidationError) as raised:
            services.authorization_update(
                authorization=authorization, data={"notes": "x"}, lines=lines
            )
        assert _errors(raised) == {field}
    assert _lines(authorization) == before
    assert Authorization.objects.get(pk=authorization.pk).notes == ""


def test_authorization_update_keeps_lines_the_ledger_draws_on(parts):
    authorization = _create(parts)
    [(line_id, _, _)] = before = _lines(authorization)
    line = AuthorizationLine.objects.get(pk=line_id)
    services.units_reserve(line=line, units=6, service_date=START + timedelta(days=1))
    new = LineSpec(service_codes=[parts["code"]], units_authorized=10)
    with pytest.raises(AuthorizationLineInUseError) as raised:
        services.authorization_update(authorization=authorization, data={}, lines=[new])
    assert raised.value.extra["lines"] == [line_id]
    with pytest.raises(AuthorizationLineBelowUsageError):
        services.authorization_update(
            authorization=authorization,
            data={},
            lines=[LineSpec(service_codes=[parts["code"]], units_authorized=5, id=line_id), new],
        )
    assert _lines(authorization) == before


def test_authorization_update_refuses_another_patient_with_the_first_ones_coverage(parts):
    authorization = _create(parts)
    stranger = f.patient()
    with pytest.raises(ValidationError) as raised:
        services.authorization_update(authorization=authorization, data={"patient": stranger})
    assert _errors(raised) == {"patient"}
    assert Authorization.objects.get(pk=authorization.pk).patient_id == parts["patient"].pk
    theirs = af.coverage(stranger)
    with pytest.raises(ValidationError) as raised:
        services.authorization_update(authorization=authorization, data={"coverage": theirs})
    assert _errors(raised) == {"coverage"}
    moved = services.authorization_update(
        authorization=authorization, data={"patient": stranger, "coverage": theirs}
    )
    fresh = Authorization.objects.get(pk=moved.pk)
    assert (fresh.patient_id, fresh.coverage_id) == (stranger.pk, theirs.pk)


def test_authorization_update_refuses_an_end_before_the_start_and_unknown_fields(parts):
    authorization = _create(parts)
    with pytest.raises(ValidationError) as raised:
        services.authorization_update(
            authorization=authorization, data={"end_date": START - timedelta(days=1)}
        )
    assert _errors(raised) == {"end_date"}
    with pytest.raises(ValidationError) as raised:
        services.authorization_update(authorization=authorization, data={"units_used": 3})
    assert _errors(raised) == {"units_used"}
