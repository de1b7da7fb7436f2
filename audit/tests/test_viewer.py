"""The audit trail in the clinic admin: clinic admins read it (all, or one patient's: "Who saw
this record") and export it, the export itself recorded; nobody adds, changes or deletes an
event; other roles do not see it."""

import csv
import io
import json

import pytest

from audit.admin import patient_events_url
from audit.models import AuditEvent
from scheduling.tests import factories as f
from tests.fixtures import in_clinic, session_client

CHANGELIST = "/admin/audit/auditevent/"


@pytest.fixture
def seen(acme, make_user, client_for):
    """Robin read through the API by the front desk, and Casey by the integrator."""
    users = {role: make_user(acme, role) for role in ("clinic_admin", "front_desk", "integrator")}
    with in_clinic(acme):
        world = f.build_world()
    assert client_for(acme, users["front_desk"]).get(f"/api/v1/patients/{world.patient.pk}/")
    other = f"/api/v1/patients/{world.other_patient.pk}/"
    assert client_for(acme, users["integrator"]).get(other).status_code == 200
    return world, users


def test_a_clinic_admin_reads_one_patients_events_from_the_patient_page(acme, seen):
    world, users = seen
    admin = session_client(acme, users["clinic_admin"])
    page = admin.get(f"/admin/practice/patient/{world.patient.pk}/change/")
    url = patient_events_url(world.patient.pk)
    assert "Who saw this record" in page.content.decode() and url in page.content.decode()
    listing = admin.get(url)
    assert listing.status_code == 200
    rows = list(listing.context["cl"].result_list)
    # The front desk's read, then the clinic admin's own (the patient page above).
    assert [(e.user_id, e.action) for e in rows] == [
        (users["clinic_admin"].pk, "read"),
        (users["front_desk"].pk, "read"),
    ]
    assert {e.patient_id for e in rows} == {world.patient.pk}
    by_user = admin.get(CHANGELIST, {"user__id__exact": users["integrator"].pk})
    assert [e.patient_id for e in by_user.context["cl"].result_list] == [world.other_patient.pk]
    by_action = admin.get(CHANGELIST, {"action__exact": "update"})
    assert list(by_action.context["cl"].result_list) == []
    assert admin.get(CHANGELIST, {"patient": "x"}).context["cl"].result_count == 0


def test_nobody_adds_changes_or_deletes_an_event(acme, seen):
    _, users = seen
    admin = session_client(acme, users["clinic_admin"])
    with in_clinic(acme):
        event = AuditEvent.objects.first()
    assert admin.get(f"{CHANGELIST}add/").status_code == 403
    assert admin.post(f"{CHANGELIST}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    page = admin.get(f"{CHANGELIST}{event.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert admin.post(f"{CHANGELIST}{event.pk}/change/", {"action": "delete"}).status_code == 403
    with in_clinic(acme):
        assert AuditEvent.objects.get(pk=event.pk).action == "read"


@pytest.mark.parametrize("role", ["front_desk", "integrator"])
def test_other_roles_do_not_see_the_trail_nor_the_link(acme, seen, role):
    world, users = seen
    client = session_client(acme, users[role])
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(f"{CHANGELIST}export/csv/").status_code == 403
    page = client.get(f"/admin/practice/patient/{world.patient.pk}/change/")
    assert page.status_code == 200 and b"Who saw this record" not in page.content


def test_export_of_a_patients_events_as_csv_and_json_is_itself_recorded(acme, seen):
    world, users = seen
    admin = session_client(acme, users["clinic_admin"])
    listing = admin.get(patient_events_url(world.patient.pk))
    assert f"{CHANGELIST}export/csv/?patient={world.patient.pk}" in listing.content.decode()

    exported = admin.get(f"{CHANGELIST}export/csv/", {"patient": world.patient.pk})
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert [(r["user"], r["action"], r["patient_id"], r["clinic"]) for r in rows] == [
        (users["front_desk"].email, "read", str(world.patient.pk), "acme")
    ]
    assert rows[0]["object_type"] == "practice.patient"

    as_json = admin.get(f"{CHANGELIST}export/json/", {"patient": world.patient.pk})
    events = json.loads(b"".join(as_json.streaming_content))
    # The CSV export is now one of the patient's events: read, export.
    assert [(e["action"], e["object_label"]) for e in events] == [
        ("export", "audit events (csv)"),
        ("read", ""),
    ]
    with in_clinic(acme):
        exports = list(AuditEvent.objects.filter(action="export").order_by("id"))
    assert [(e.user_id, e.patient_id, e.object_label) for e in exports] == [
        (users["clinic_admin"].pk, world.patient.pk, "audit events (csv)"),
        (users["clinic_admin"].pk, world.patient.pk, "audit events (json)"),
    ]


def test_an_unknown_export_format_is_refused(acme, seen):
    _, users = seen
    admin = session_client(acme, users["clinic_admin"])
    assert admin.get(f"{CHANGELIST}export/xml/").status_code == 403
