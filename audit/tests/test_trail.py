"""The audit table is append-only in PostgreSQL (in every clinic: the template's trigger comes
with the clone), the retention purge removes only old events, and events recorded for a
request are written after its response with the request's id."""

import time

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.urls import path

from audit import services
from audit.models import AuditEvent
from practice.tests.factories import PatientFactory
from tests.fixtures import ClinicClient, in_clinic


def _event_in(clinic, **kwargs) -> AuditEvent:
    with in_clinic(clinic):
        services.record_now(services.READ, label="probe", **kwargs)
        return AuditEvent.objects.get()


def _execute(statement: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {schema}.audit_auditevent SET action = 'delete'",
        "UPDATE {schema}.audit_auditevent SET occurred_at = now() - interval '20 years'",
        "DELETE FROM {schema}.audit_auditevent",
    ],
)
def test_update_and_delete_of_an_event_fail_in_postgresql(acme, statement):
    event = _event_in(acme)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        _execute(statement.format(schema=acme.schema_name))
    with in_clinic(acme):
        assert AuditEvent.objects.get().action == event.action == "read"


def test_the_template_holds_the_trigger_every_clone_copies(acme):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE t.tgname = 'audit_event_append_only' ORDER BY 1"
        )
        schemas = [row[0] for row in cursor.fetchall()]
    assert {"clinic_template", "acme", "globex"} <= set(schemas)


def _insert_aged(clinic, age: str) -> None:
    """An event `age` old by the database's clock (the purge's cutoff is computed there)."""
    _execute(
        f"INSERT INTO {clinic.schema_name}.audit_auditevent (occurred_at, schema_name, action, "
        "client, object_id, object_label, fields, request_id, method, path) "
        "VALUES (now() - %s::interval, %s, 'read', '', '', %s, '{}', '', '', '')",
        [age, clinic.schema_name, age],
    )


def test_retention_purge_removes_only_events_older_than_the_retention(acme, globex):
    for age in ("7 years", "6 years 2 days", "5 years 11 months", "1 minute"):
        _insert_aged(acme, age)
    _insert_aged(globex, "7 years")
    with in_clinic(acme):
        assert services.events_purge(retention_days=2190) == 2
        assert sorted(AuditEvent.objects.values_list("object_label", flat=True)) == [
            "1 minute",
            "5 years 11 months",
        ]
    with in_clinic(globex):
        assert AuditEvent.objects.count() == 1  # each clinic purges its own


def test_even_the_purge_path_cannot_remove_recent_events(acme):
    _insert_aged(acme, "1 minute")
    _insert_aged(acme, "200 days")
    with in_clinic(acme):
        with pytest.raises(DatabaseError, match="at least 365"), transaction.atomic():
            services.events_purge(retention_days=30)
        # The trigger's own door, opened by hand with a cutoff of now: still refused.
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            _execute("SELECT set_config('audit.purge_cutoff', now()::text, true)")
            _execute("DELETE FROM audit_auditevent")
        assert AuditEvent.objects.count() == 2


def test_record_now_keeps_who_what_and_the_patient_but_no_value(acme, make_user):
    user = make_user(acme, "clinic_admin")
    with in_clinic(acme):
        patient = PatientFactory(first_name="Secret")
        services.record_now(
            services.UPDATE, patient, user=user, fields=["phone", "first_name", "phone"]
        )
        event = AuditEvent.objects.get()
        stored = repr(list(AuditEvent.objects.values()))
        assert event.content_type.model == "patient"
    assert (event.user_id, event.patient_id, event.object_id) == (
        user.pk,
        patient.pk,
        str(patient.pk),
    )
    assert event.fields == ["first_name", "phone"]
    assert (event.schema_name, event.action, event.request_id) == ("acme", "update", "")
    assert "Secret" not in stored


def test_record_without_the_middleware_writes_at_once(acme):
    request = RequestFactory().get("/somewhere/", REMOTE_ADDR="203.0.113.9")
    with in_clinic(acme):
        services.record(request, services.EXPORT, label="audit events")
        event = AuditEvent.objects.get()
    assert (event.action, event.ip, event.path, event.method) == (
        "export",
        "203.0.113.9",
        "/somewhere/",
        "GET",
    )


def test_record_refuses_an_unknown_action(acme):
    with in_clinic(acme), pytest.raises(ValueError, match="peek"):
        services.record_now("peek", label="x")


# After the response ----------------------------------------------------------------------


def _recording_view(request):
    from django.http import HttpResponse

    services.record(request, services.READ, label="first")
    services.record(request, services.READ, label="second")
    # Nothing written yet: the events wait for the response to be sent.
    trail = services.trail_of(request)
    assert not AuditEvent.objects.filter(request_id=trail.request_id).exists()
    return HttpResponse("ok")


urlpatterns = [path("recording/", _recording_view)]


@pytest.mark.urls("audit.tests.test_trail")
def test_events_are_written_after_the_response_in_one_insert(acme):
    client = ClinicClient(acme)
    response = client.get("/recording/", HTTP_X_REQUEST_ID="proxy-given.42")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "proxy-given.42"
    with in_clinic(acme):
        events = list(AuditEvent.objects.order_by("id"))
    assert [e.object_label for e in events] == ["first", "second"]
    assert {e.request_id for e in events} == {"proxy-given.42"}
    assert {(e.schema_name, e.ip, e.path) for e in events} == {("acme", "127.0.0.1", "/recording/")}


@pytest.mark.urls("audit.tests.test_trail")
def test_a_request_gets_a_new_id_when_it_brings_none_or_a_bad_one(acme):
    client = ClinicClient(acme)
    first = client.get("/recording/")["X-Request-ID"]
    second = client.get("/recording/", HTTP_X_REQUEST_ID="bad id <script>")["X-Request-ID"]
    assert len(first) == len(second) == 32 and first != second
    with in_clinic(acme):
        assert set(AuditEvent.objects.values_list("request_id", flat=True)) == {first, second}


def test_a_failed_write_after_the_response_is_logged_not_raised(acme, caplog):
    trail = services.RequestTrail(request_id="r1")
    with in_clinic(acme):
        trail.events.append(services.event_build(services.READ, label="lost"))
    trail.events[0].schema_name = "no_such_schema"
    services.trail_flush(trail)
    assert "1 event(s) of request r1 NOT WRITTEN" in caplog.text
    assert trail.events == []


@pytest.mark.usefixtures("celery_worker")
def test_the_nightly_beat_purges_every_clinic_in_a_worker(committed):
    from django.conf import settings

    from audit.tasks import purge_everywhere_task
    from tenants.models import Clinic

    clinics = [Clinic.objects.get(slug="acme"), Clinic.objects.get(slug="globex")]
    for clinic in clinics:
        _insert_aged(clinic, "7 years")
        _insert_aged(clinic, "1 day")
    schedule = settings.CELERY_BEAT_SCHEDULE["audit-retention"]
    assert schedule["task"] == purge_everywhere_task.name
    assert purge_everywhere_task.delay().get(timeout=30) == 2
    deadline = time.monotonic() + 30
    left = None
    while time.monotonic() < deadline:
        left = {}
        for clinic in clinics:
            with in_clinic(clinic):
                left[clinic.slug] = list(AuditEvent.objects.values_list("object_label", flat=True))
        if left == {"acme": ["1 day"], "globex": ["1 day"]}:
            break
        time.sleep(0.2)
    assert left == {"acme": ["1 day"], "globex": ["1 day"]}


def test_the_batch_writer_writes_what_requests_handed_over_in_one_go(committed, settings):
    """Outside tests (AUDIT_FLUSH_SECONDS > 0) a request only hands its events over: the
    process's writer thread writes them, from its own connection, within the interval."""
    from tenants.models import Clinic

    settings.AUDIT_FLUSH_SECONDS = 0.05
    acme = Clinic.objects.get(slug="acme")
    trails = []
    with in_clinic(acme):
        for request_id in ("batched-1", "batched-2"):
            trail = services.RequestTrail(request_id=request_id)
            trail.events.append(services.event_build(services.READ, label=request_id))
            trails.append(trail)
    writer = services._writer()
    assert writer.thread.is_alive()
    for trail in trails:
        services.trail_flush(trail)
        assert trail.events == []
    deadline = time.monotonic() + 20
    labels: list[str] = []
    while time.monotonic() < deadline and len(labels) < 2:
        time.sleep(0.05)
        with in_clinic(acme):
            labels = sorted(AuditEvent.objects.values_list("object_label", flat=True))
    assert labels == ["batched-1", "batched-2"]
    assert writer.flush() == 0  # nothing left queued


def test_the_batch_writer_logs_what_it_could_not_write(committed, settings, caplog):
    from tenants.models import Clinic

    settings.AUDIT_FLUSH_SECONDS = 3600  # the thread sleeps: this test flushes by hand
    with in_clinic(Clinic.objects.get(slug="acme")):
        event = services.event_build(services.READ, label="lost")
    event.schema_name = "no_such_schema"
    writer = services.BatchWriter(3600)
    writer.put([event])
    assert writer.flush() == 0
    assert "1 event(s) NOT WRITTEN" in caplog.text
    assert writer.flush() == 0  # not queued again


def _reads(clinic, count: int, request_id: str) -> list[services.Event]:
    with in_clinic(clinic):
        return [
            services.event_build(services.READ, label=f"read {i}", request_id=request_id)
            for i in range(count)
        ]


def _written(clinic, request_id: str) -> int:
    with in_clinic(clinic):
        return AuditEvent.objects.filter(request_id=request_id).count()


def test_one_request_of_5000_reads_is_written_whole_with_their_content_types(committed, settings):
    """A request that names 5,000 patients (a report's page of old) hands over 5,000 events:
    the writer streams every one (a COPY: no statement grows with the events), each with its
    row's content type."""
    from django.contrib.contenttypes.models import ContentType

    from tenants.models import Clinic

    settings.AUDIT_FLUSH_SECONDS = 3600  # the thread sleeps: this test flushes by hand
    acme = Clinic.objects.get(slug="acme")
    trail = services.RequestTrail(request_id="five-thousand")
    trail.events = _reads(acme, 5000, trail.request_id)
    for i, event in enumerate(trail.events[:4000]):  # reads of patients (rows), then labels
        event.model, event.object_id, event.patient_id = ("practice", "patient"), str(i), i
        event.fields = ["a\ttab", "new\nline"] if i == 0 else []
    writer = services.BatchWriter(3600, batch=10_000)  # the size bound is another test's
    writer.put(trail.events)
    assert writer.flush() == 5000
    assert _written(acme, "five-thousand") == 5000
    with in_clinic(acme):
        patient_type = ContentType.objects.get(app_label="practice", model="patient")
        written = AuditEvent.objects.filter(request_id="five-thousand")
        assert written.filter(content_type=patient_type).count() == 4000
        assert written.filter(content_type=None, object_label__startswith="read ").count() == 1000
        assert set(written.exclude(patient_id=None).values_list("patient_id", flat=True)) == set(
            range(4000)
        )
        first = written.get(patient_id=0)
        assert (first.object_id, first.fields) == ("0", ["a\ttab", "new\nline"])


def test_the_writer_wakes_when_its_batch_is_full_and_splits_what_is_larger(committed, settings):
    """Events beyond the batch bound are written at once, not at the end of the interval (an
    hour here), in transactions of at most `batch` events; what is below the bound waits."""
    from tenants.models import Clinic

    settings.AUDIT_FLUSH_SECONDS = 3600
    acme = Clinic.objects.get(slug="acme")
    writer = services.BatchWriter(3600, batch=1000)
    taken: list[int] = []
    take = writer._take

    def recording_take() -> list[services.Event]:
        events = take()
        taken.append(len(events))
        return events

    writer._take = recording_take  # type: ignore[method-assign]
    writer.put(_reads(acme, 999, "below-the-bound"))
    time.sleep(1)
    assert _written(acme, "below-the-bound") == 0  # not woken: under the bound
    writer.put(_reads(acme, 1501, "over-the-bound"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _written(acme, "over-the-bound") < 1501:
        time.sleep(0.1)
    assert _written(acme, "below-the-bound") == 999
    assert _written(acme, "over-the-bound") == 1501
    assert max(taken) == 1000 and sum(taken) == 2500  # no transaction above the bound
    assert writer.flush() == 0
