"""The patient's waitlist page: join the list, see the entry, and see an offer held for them
with its page, where the time is booked in one click."""

from datetime import timedelta

from scheduling import services as scheduling
from scheduling.models import Appointment
from scheduling.tests import factories as f
from tests.fixtures import in_clinic
from waitlist import services
from waitlist.models import WaitlistEntry


def test_a_patient_joins_the_waitlist_and_books_the_offer_from_their_page(world, patient_client):
    day = f.next_weekday(2)
    page = patient_client.get("/waitlist/")
    assert page.status_code == 200
    joined = patient_client.post(
        "/waitlist/",
        {
            "practitioner": world.maya.pk,
            "appointment_type": world.visit.pk,
            "earliest_date": day.isoformat(),
            "latest_date": (day + timedelta(days=3)).isoformat(),
            "preferred_weekdays": ["2", "3"],
        },
    )
    assert joined.status_code == 302, joined.content.decode()[-2000:]
    with in_clinic(world.clinic):
        entry = WaitlistEntry.objects.get(patient=world.patient)
        assert entry.preferred_weekdays == [2, 3]
        other = scheduling.appointment_book(
            patient=f.patient(first="Early"), practitioner=world.maya,
            appointment_type=world.visit, start=f.local(day, 10),
        )  # fmt: skip
        cancelled = scheduling.appointment_cancel(appointment=other, reason="Away")
        offer = services.slot_offer(slot=services.freed_slot_of(cancelled, "cancelled", {}))
        assert offer is not None and offer.entry_id == entry.pk
    page = patient_client.get("/waitlist/").content.decode()
    assert f'data-offer="{offer.pk}"' in page
    link = page.split(f'data-offer="{offer.pk}"')[1].split('href="')[1].split('"')[0]
    assert link.startswith("/w/")
    shown = patient_client.get(link)
    assert "Book this time" in shown.content.decode()
    booked = patient_client.post(link, {"choice": "accept"})
    assert booked.status_code == 200
    assert 'data-done="accepted"' in booked.content.decode()
    with in_clinic(world.clinic):
        visit = Appointment.objects.get(patient=world.patient)
        assert (visit.start, visit.status) == (f.local(day, 10), "booked")
    again = patient_client.post(link, {"choice": "accept"})
    assert again.status_code == 410
    assert 'data-problem="accepted"' in again.content.decode()


def test_bad_input_on_the_page_names_the_field(world, patient_client):
    day = f.next_weekday(2)
    answer = patient_client.post(
        "/waitlist/",
        {
            "practitioner": world.maya.pk,
            "appointment_type": world.visit.pk,
            "earliest_date": day.isoformat(),
            "latest_date": (day - timedelta(days=1)).isoformat(),
        },
    )
    assert answer.status_code == 200
    assert "The last day comes before the first." in answer.content.decode()
    with in_clinic(world.clinic):
        assert not WaitlistEntry.objects.exists()


def test_a_tampered_or_foreign_offer_link_explains_itself(world, patient_client, globex):
    from waitlist.links import offer_link_path

    with in_clinic(world.clinic):
        w_day = f.next_weekday(2)
        entry = services.entry_create(
            patient=world.patient, practitioner=world.maya, appointment_type=world.visit,
            earliest_date=w_day, latest_date=w_day,
        )  # fmt: skip
        other = scheduling.appointment_book(
            patient=f.patient(first="Early"), practitioner=world.maya,
            appointment_type=world.visit, start=f.local(w_day, 10),
        )  # fmt: skip
        cancelled = scheduling.appointment_cancel(appointment=other, reason="Away")
        offer = services.slot_offer(slot=services.freed_slot_of(cancelled, "cancelled", {}))
        assert offer is not None and offer.entry_id == entry.pk
        link = offer_link_path(offer)
    tampered = patient_client.get(link[:-3] + "xx/")
    assert tampered.status_code == 400
    assert 'data-problem="tampered"' in tampered.content.decode()
    from tests.fixtures import ClinicClient

    foreign = ClinicClient(globex).get(link)
    assert foreign.status_code == 400
    assert 'data-problem="other-clinic"' in foreign.content.decode()
