"""Issue 16 part 8: a patient's data rights. The export (JSON and PDF) through the API, the
patient pages and the admin; erasure as anonymisation, asked for by the patient and carried
out by the clinic admin.

The world is tests/test_patient_fields.py's: Robin's visit, authorization, series and
smart-booking job, each carrying what the front desk wrote; Casey, another patient of the same
clinic, and a patient of another clinic carry words of their own, which Robin's export must
never show.
"""

import io
import json
from datetime import date, timedelta

import pytest
from django.db import connection
from pypdf import PdfReader

from accounts.models import User
from audit import services as audit
from audit.models import AuditEvent
from authorizations.models import Authorization, AuthorizationLine
from practice.models import ErasureRequest, Patient
from practice.rights import (
    AlreadyErasedError,
    erasure_request,
    patient_erase,
    patient_export,
    patient_export_file,
)
from scheduling.models import Appointment, AppointmentEvent, SmartBookingJob
from scheduling.services import appointment_book, appointment_cancel
from scheduling.tests import factories as sf
from tests.fixtures import in_clinic, refresh_token_for, session_client
from tests.test_patient_fields import SECRET, _keys, staff_only_fields
from tests.test_patient_fields import world as world  # noqa: F401 (the fixture)

CASEY_WORDS = "Casey's own words: allergic to latex"
ROBIN_EMAIL = "robin.private@example.org"


@pytest.fixture
def rights(world, globex, make_user, client_for):
    """The world, plus Robin's contact details, Casey's notes, a patient of another clinic and
    a staff user of every kind that matters here."""
    with in_clinic(world.acme):
        Patient.objects.filter(pk=world.patient.pk).update(
            email=ROBIN_EMAIL, phone="+1 555 0100", address_line1="12 Robin Lane", city="Salem"
        )
        Appointment.objects.filter(patient=world.other_patient).update(notes=CASEY_WORDS)
    with in_clinic(globex):
        stranger = sf.patient(first="Stranger")
        Patient.objects.filter(pk=stranger.pk).update(email="stranger@globex.test")
    world.admin = make_user(world.acme, "clinic_admin")
    world.desk_user = make_user(world.acme, "front_desk")
    world.biller = make_user(world.acme, "biller")
    world.clinic_admin = client_for(world.acme, world.admin)
    world.globex_stranger = stranger
    return world


def _export(client, url: str, fmt: str = "json"):
    return client.get(f"{url}?format={fmt}")


# --- Export: what it holds -----------------------------------------------------------------


def test_the_patients_own_export_holds_their_data_and_nobody_elses(rights):
    answer = _export(rights.client, "/api/v1/me/export/")
    assert answer.status_code == 200, answer.content[:300]
    data = answer.json()
    assert data["format"] == "clinic.patient-data" and data["version"] == 1
    assert data["audience"] == "patient"
    assert data["patient"]["id"] == rights.patient.pk
    assert data["patient"]["email"] == ROBIN_EMAIL
    assert data["account"]["email"] == rights.patient_user.email
    assert "password" not in json.dumps(data)
    visits = {row["id"] for row in data["appointments"]}
    assert rights.alpha_visit.pk in visits and rights.beta_visit.pk not in visits
    assert [a["lines"][0]["units_authorized"] for a in data["authorizations"]] == [40]
    usage = data["authorizations"][0]["lines"][0]["usage"]
    assert [(u["units"], u["state"]) for u in usage] == [(4, "reserved")]
    assert len(data["series"]) == 1 and len(data["smart_booking_jobs"]) == 1
    # Times in the clinic's zone (New York), the practitioner and place named.
    visit = next(row for row in data["appointments"] if row["id"] == rights.alpha_visit.pk)
    assert (
        visit["start"]
        == rights.alpha_visit.start.astimezone(sf.ZoneInfo("America/New_York")).isoformat()
    )
    assert visit["practitioner"]["name"] == "Dr. Alpha" and visit["location"]["name"]
    text = answer.content.decode()
    assert CASEY_WORDS not in text and "stranger@globex.test" not in text
    assert str(rights.other_patient.last_name) not in text


def test_the_patients_copy_omits_staff_only_fields_and_the_staffs_copy_has_them(rights):
    own = _export(rights.client, f"/api/v1/patients/{rights.patient.pk}/export/")
    assert own.status_code == 200, own.content[:300]
    assert not _keys(own.json()) & staff_only_fields()
    assert SECRET.encode() not in own.content
    staff = _export(rights.clinic_admin, f"/api/v1/patients/{rights.patient.pk}/export/")
    assert staff.status_code == 200
    data = staff.json()
    assert data["audience"] == "staff"
    visit = next(row for row in data["appointments"] if row["id"] == rights.alpha_visit.pk)
    assert visit["notes"] == SECRET and visit["overbooked"] is True and visit["booked_by"]
    assert data["authorizations"][0]["notes"] == SECRET


def test_the_pdf_summary_is_a_pdf_with_the_patients_name_and_visits(rights):
    answer = _export(rights.client, "/api/v1/me/export/", "pdf")
    assert answer.status_code == 200, answer.content[:300]
    assert answer["Content-Type"] == "application/pdf"
    assert "attachment" in answer["Content-Disposition"]
    assert answer.content.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(answer.content))
    text = " ".join(page.extract_text() for page in reader.pages)
    with in_clinic(rights.acme):
        robin = Patient.objects.get(pk=rights.patient.pk)
    assert robin.first_name in text and robin.last_name in text
    assert "Dr. Alpha" in text and "Appointments (1)" in text
    assert SECRET not in text


def test_the_pdf_prints_long_and_non_latin_names(rights):
    with in_clinic(rights.acme):
        Patient.objects.filter(pk=rights.patient.pk).update(
            last_name="Ó Súilleabháin-李" + "n" * 80, email="x" * 120 + "@example.org"
        )
        document = patient_export(patient=rights.patient, staff=False)
    content, media_type, name = patient_export_file(document, "pdf")
    assert media_type == "application/pdf" and name.endswith(".pdf")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    assert "Súilleabháin-?" in text  # what Latin-1 cannot print shows as "?"


# --- Export: who may -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [("clinic_admin", 200), ("front_desk", 200), ("integrator", 200), ("biller", 403)],
)
def test_staff_export_follows_the_grants(rights, make_user, client_for, role, status):
    user = make_user(rights.acme, role)
    answer = client_for(rights.acme, user).get(f"/api/v1/patients/{rights.patient.pk}/export/")
    assert answer.status_code == status, answer.content[:300]


def test_an_unknown_format_is_a_problem_naming_the_field(rights):
    for url in ("/api/v1/me/export/", f"/api/v1/patients/{rights.patient.pk}/export/"):
        answer = rights.client.get(f"{url}?format=xml")
        assert answer.status_code == 400, answer.content[:300]
        assert list(answer.json()["errors"]) == ["format"]


def test_a_patient_exports_only_themselves_and_strangers_nothing(rights, client_for):
    other = rights.client.get(f"/api/v1/patients/{rights.other_patient.pk}/export/")
    assert other.status_code == 404
    anonymous = client_for(rights.acme)
    assert anonymous.get("/api/v1/me/export/").status_code == 401
    assert anonymous.get(f"/api/v1/patients/{rights.patient.pk}/export/").status_code == 401
    # A refused PDF is still a problem in JSON.
    refused = anonymous.get("/api/v1/me/export/?format=pdf")
    assert refused.status_code == 401 and refused.json()["code"] == "not-authenticated"


def test_another_clinics_token_exports_nothing(rights, client_for, globex):
    with in_clinic(globex):
        globex_admin = User.objects.create_user("boss@globex.test", "a-long-test-password")
    answer = client_for(globex, globex_admin).get(f"/api/v1/patients/{rights.patient.pk}/export/")
    assert answer.status_code in (403, 404)


# --- Erasure -------------------------------------------------------------------------------


def _tables_holding(schema: str, *needles: str) -> dict[str, list[str]]:
    """Every table of `schema` (and column) whose text holds one of `needles`."""
    found: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND data_type IN ('text', 'character varying', 'jsonb', "
            "'citext')",
            [schema],
        )
        for table, column in cursor.fetchall():
            for needle in needles:
                cursor.execute(
                    f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}"::text ILIKE %s',
                    [f"%{needle}%"],
                )
                if cursor.fetchone()[0]:
                    found.setdefault(f"{table}.{column}", []).append(needle)
    return found


@pytest.fixture
def erasable(rights):
    """Robin with a past completed visit (units consumed) and a future one, a cancel reason of
    their own, and an erasure they asked for."""
    with in_clinic(rights.acme):
        past_day = sf.next_weekday(2) - timedelta(days=21)
        past = Appointment.objects.create(
            practitioner=rights.alpha,
            patient=rights.patient,
            appointment_type=rights.visit,
            location=rights.downtown,
            start=sf.local(past_day, 9),
            end=sf.local(past_day, 10),
            blocked=(sf.local(past_day, 9), sf.local(past_day, 10)),
            status=Appointment.Status.COMPLETED,
            notes=f"{SECRET} (past)",
        )
        spare = appointment_book(
            patient=rights.patient,
            practitioner=rights.beta,
            appointment_type=rights.visit,
            start=rights.at(15),
        )
        appointment_cancel(appointment=spare, by=rights.patient_user, reason="Robin is unwell")
        asked = erasure_request(
            patient=rights.patient, by=rights.patient_user, message="Robin asks: forget me"
        )
    rights.past, rights.asked = past, asked
    return rights


def test_erasure_leaves_no_personal_data_and_keeps_what_billing_needs(erasable):
    w = erasable
    with in_clinic(w.acme):
        robin = Patient.objects.get(pk=w.patient.pk)
        first, last, account_email = robin.first_name, robin.last_name, w.patient_user.email
        visits_before = Appointment.objects.filter(patient=robin).count()
        line = AuthorizationLine.objects.get(pk=w.line.pk)
        used_before, scheduled_before = line.units_used, line.units_scheduled
        assert scheduled_before == 4  # the future visit's units
        assert set(_tables_holding(w.acme.schema_name, ROBIN_EMAIL)) >= {
            "practice_patient.email"  # the search sees what it looks for
        }

        record = patient_erase(patient=robin, by=w.admin, reason="Patient's request (GDPR 17)")

        assert (
            _tables_holding(
                w.acme.schema_name,
                first,
                last,
                ROBIN_EMAIL,
                account_email,
                "555 0100",
                "Robin Lane",
                SECRET,
                "Robin is unwell",
                "forget me",
            )
            == {}
        )
        robin = Patient.objects.get(pk=w.patient.pk)
        assert (robin.first_name, robin.last_name) == ("Erased", f"patient {robin.pk}")
        assert robin.date_of_birth == date(1990, 1, 1) and not robin.is_active
        assert robin.email == robin.phone == robin.city == ""
        user = User.objects.get(pk=w.patient_user.pk)
        assert not user.is_active and not user.has_usable_password()
        assert user.email.endswith("@erased.invalid") and user.full_name == ""
        # Kept: every visit (dates, codes, statuses), the ledger; future visits cancelled.
        assert Appointment.objects.filter(patient=robin).count() == visits_before
        future = Appointment.objects.get(pk=w.alpha_visit.pk)
        assert future.status == "cancelled" and future.cancellation_reason
        assert Appointment.objects.get(pk=w.past.pk).status == "completed"
        line.refresh_from_db()
        assert (line.units_used, line.units_scheduled) == (used_before, 0)
        assert Authorization.objects.filter(patient=robin).count() == 1
        assert AppointmentEvent.objects.filter(appointment__patient=robin).exists()
        # Recorded: the request the patient made is the erasure's record.
        record.refresh_from_db()
        assert record.pk == w.asked.pk and record.status == "erased"
        assert record.decided_by == w.admin and record.decided_at is not None
        assert record.summary["appointments_cancelled"] == 1
        assert record.summary["accounts_closed"] == 1


def test_erasure_frees_the_slot_and_signs_the_patient_out(erasable):
    w = erasable
    refresh = refresh_token_for(w.acme, w.patient_user)
    with in_clinic(w.acme):
        version = User.objects.get(pk=w.patient_user.pk).token_version
        patient_erase(patient=w.patient, by=w.admin, reason="request")
        # The freed slot books again.
        again = appointment_book(
            patient=w.other_patient,
            practitioner=w.alpha,
            appointment_type=w.visit,
            start=w.alpha_visit.start,
        )
        assert again.pk
    assert w.client.get("/api/v1/me/patient/").status_code == 401
    renewed = w.client.post(
        "/api/v1/auth/token/refresh/", {"refresh": str(refresh)}, "application/json"
    )
    assert renewed.status_code == 401, renewed.content[:300]
    with in_clinic(w.acme):
        assert User.objects.get(pk=w.patient_user.pk).token_version > version
    page = session_client(w.acme, None)
    assert not page.login(email=w.patient_user.email, password="a-long-test-password")


def test_erasure_happens_once_and_needs_a_reason(erasable):
    w = erasable
    with in_clinic(w.acme):
        with pytest.raises(Exception, match="reason"):
            patient_erase(patient=w.patient, by=w.admin, reason="  ")
        patient_erase(patient=w.patient, by=w.admin, reason="request")
        with pytest.raises(AlreadyErasedError):
            patient_erase(patient=w.patient, by=w.admin, reason="again")
        with pytest.raises(AlreadyErasedError):
            erasure_request(patient=w.patient, by=None)
        assert ErasureRequest.objects.filter(patient=w.patient, status="erased").count() == 1


def test_erasure_cancels_queued_smart_booking_jobs(erasable):
    w = erasable
    with in_clinic(w.acme):
        patient_erase(patient=w.patient, by=w.admin, reason="request")
        assert set(
            SmartBookingJob.objects.filter(patient=w.patient).values_list("status", flat=True)
        ) == {"cancelled"}


def test_an_erased_patients_export_shows_only_what_is_kept(erasable):
    w = erasable
    with in_clinic(w.acme):
        patient_erase(patient=w.patient, by=w.admin, reason="request")
        document = patient_export(patient=w.patient, staff=True)
    text = json.dumps(document)
    assert ROBIN_EMAIL not in text and "Robin Lane" not in text and SECRET not in text
    assert len(document["appointments"]) == 3
    assert document["erasure_requests"][0]["status"] == "erased"


# --- The patient's pages -------------------------------------------------------------------


def test_the_patient_downloads_their_data_from_their_pages(rights):
    page = session_client(rights.acme, rights.patient_user)
    answer = page.get("/your-data/")
    assert answer.status_code == 200
    assert b"/your-data/download.json" in answer.content
    copy = page.get("/your-data/download.json")
    assert copy.status_code == 200 and "attachment" in copy["Content-Disposition"]
    data = json.loads(copy.content)
    assert data["patient"]["id"] == rights.patient.pk and data["audience"] == "patient"
    assert not _keys(data) & staff_only_fields() and SECRET.encode() not in copy.content
    pdf = page.get("/your-data/download.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert page.get("/your-data/download.xml").status_code == 404


def test_the_your_data_pages_are_the_patients_own(rights):
    anonymous = session_client(rights.acme, None)
    answer = anonymous.get("/your-data/download.json")
    assert answer.status_code == 302 and "/signin/" in answer["Location"]
    staff = session_client(rights.acme, rights.admin)
    assert staff.get("/your-data/").status_code == 302  # staff belong in the admin


def test_a_patient_asks_for_erasure_once_and_the_clinic_declines_it(rights):
    page = session_client(rights.acme, rights.patient_user)
    sent = page.post("/your-data/", {"message": "Please forget me"})
    assert sent.status_code == 302
    again = page.post("/your-data/", {"message": "Please, again"})
    assert again.status_code == 302
    with in_clinic(rights.acme):
        asked = ErasureRequest.objects.get(patient=rights.patient)
        assert (asked.status, asked.message) == ("pending", "Please forget me")
        assert asked.requested_by == rights.patient_user
    admin = session_client(rights.acme, rights.admin)
    review = admin.get(f"/admin/practice/patient/{rights.patient.pk}/erase/")
    assert review.status_code == 200 and b"Please forget me" in review.content
    declined = admin.post(
        f"/admin/practice/patient/{rights.patient.pk}/erase/",
        {"reason": "Open claim with the payer until March", "decline": "1"},
    )
    assert declined.status_code == 302
    with in_clinic(rights.acme):
        asked.refresh_from_db()
        assert asked.status == "declined" and asked.decided_by == rights.admin
        assert Patient.objects.get(pk=rights.patient.pk).is_active  # nothing erased
    shown = page.get("/your-data/")
    assert b"Open claim with the payer" in shown.content


# --- The admin -----------------------------------------------------------------------------


def test_the_admin_erases_with_a_reason_and_a_confirmation(rights):
    admin = session_client(rights.acme, rights.admin)
    url = f"/admin/practice/patient/{rights.patient.pk}/erase/"
    page = admin.get(f"/admin/practice/patient/{rights.patient.pk}/change/")
    assert page.status_code == 200 and url.encode() in page.content
    unconfirmed = admin.post(url, {"reason": "Patient's request", "erase": "1"})
    assert unconfirmed.status_code == 200 and b"cannot be undone" in unconfirmed.content
    no_reason = admin.post(url, {"reason": "", "confirm": "on", "erase": "1"})
    assert no_reason.status_code == 200
    with in_clinic(rights.acme):
        assert not ErasureRequest.objects.filter(patient=rights.patient).exists()
    done = admin.post(url, {"reason": "Patient's request", "confirm": "on", "erase": "1"})
    assert done.status_code == 302
    with in_clinic(rights.acme):
        record = ErasureRequest.objects.get(patient=rights.patient)
        assert record.status == "erased" and record.reason == "Patient's request"
        assert Patient.objects.get(pk=rights.patient.pk).first_name == "Erased"
    twice = admin.post(url, {"reason": "again", "confirm": "on", "erase": "1"})
    assert twice.status_code == 200 and b"has been erased" in twice.content
    listed = admin.get("/admin/practice/erasurerequest/")
    assert listed.status_code == 200 and b"Erased" in listed.content


@pytest.mark.parametrize(
    ("role", "export", "erase"),
    [
        ("clinic_admin", 200, 200),
        ("front_desk", 200, 403),
        ("biller", 403, 403),
        ("practitioner", 403, 403),
        ("patient", "login", "login"),
        ("anonymous", "login", "login"),
    ],
)
def test_the_admins_data_rights_pages_follow_the_grants(rights, admin_as, role, export, erase):
    client = admin_as(role)
    for url, want in (
        (f"/admin/practice/patient/{rights.patient.pk}/export/json/", export),
        (f"/admin/practice/patient/{rights.patient.pk}/export/pdf/", export),
        (f"/admin/practice/patient/{rights.patient.pk}/erase/", erase),
    ):
        answer = client.get(url)
        if want == "login":
            assert answer.status_code == 302 and "/login/" in answer["Location"], url
        else:
            assert answer.status_code == want, url
    if export == 200:
        copy = client.get(f"/admin/practice/patient/{rights.patient.pk}/export/json/")
        data = json.loads(copy.content)
        assert data["audience"] == "staff" and SECRET.encode() in copy.content


# --- The audit trail -----------------------------------------------------------------------


def _events(clinic, patient, action: str) -> list[AuditEvent]:
    with in_clinic(clinic):
        return list(AuditEvent.objects.filter(patient_id=patient.pk, action=action))


def test_every_export_door_leaves_one_export_event(rights):
    rights.client.get("/api/v1/me/export/")
    session_client(rights.acme, rights.patient_user).get("/your-data/download.pdf")
    session_client(rights.acme, rights.admin).get(
        f"/admin/practice/patient/{rights.patient.pk}/export/json/"
    )
    events = _events(rights.acme, rights.patient, "export")
    assert sorted((e.user_id, e.path) for e in events) == sorted(
        [
            (rights.patient_user.pk, "/api/v1/me/export/"),
            (rights.patient_user.pk, "/your-data/download.pdf"),
            (rights.admin.pk, f"/admin/practice/patient/{rights.patient.pk}/export/json/"),
        ]
    )
    assert {e.object_label for e in events} == {
        "data export (patient copy)",
        "data export (staff copy)",
    }


def test_the_export_lists_who_opened_the_record(rights):
    with in_clinic(rights.acme):
        audit.record_now(audit.READ, rights.patient, user=rights.desk_user)
    own = rights.client.get("/api/v1/me/export/").json()["access_log"]
    assert [(row["action"], row["by"]) for row in own] == [("read", rights.desk_user.email)]
    assert "ip" not in own[0] and "path" not in own[0]
    staff = rights.clinic_admin.get(f"/api/v1/patients/{rights.patient.pk}/export/").json()
    assert {"ip", "request_id", "path"} <= set(staff["access_log"][0])


def test_the_erasure_is_a_delete_event_naming_fields_not_values(erasable):
    w = erasable
    with in_clinic(w.acme):
        audit.record_now(audit.READ, w.patient, user=w.desk_user)
        patient_erase(patient=w.patient, by=w.admin, reason="request")
    (event,) = _events(w.acme, w.patient, "delete")
    assert event.user_id == w.admin.pk and event.object_id == str(w.patient.pk)
    assert {"first_name", "email", "date_of_birth"} <= set(event.fields)
    assert _events(w.acme, w.patient, "read")  # the trail is kept


def test_the_data_rights_pages_record_what_they_show(rights):
    with in_clinic(rights.acme):
        asked = erasure_request(patient=rights.patient, by=rights.patient_user)
    session_client(rights.acme, rights.patient_user).get("/your-data/")
    admin = session_client(rights.acme, rights.admin)
    admin.get(f"/admin/practice/patient/{rights.patient.pk}/erase/")
    admin.get("/admin/practice/erasurerequest/")
    reads = _events(rights.acme, rights.patient, "read")
    assert sorted((e.user_id, e.path, e.object_id) for e in reads) == sorted(
        [
            (rights.patient_user.pk, "/your-data/", str(asked.pk)),
            (
                rights.admin.pk,
                f"/admin/practice/patient/{rights.patient.pk}/erase/",
                str(rights.patient.pk),
            ),
            (rights.admin.pk, "/admin/practice/erasurerequest/", str(asked.pk)),
        ]
    )
