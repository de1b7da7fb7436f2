"""The supervising provider: named on the episode, carried onto its charges (its NPI), batched
into claims by it, written as the 837P's loop 2310D (NM1*DQ) that pyx12 accepts, shown in the
API, checked by the database (ten digits) and the model and scrubber (the check digit)."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing import charges as charging
from billing import claims as services
from billing.models import Charge, Claim
from billing.tests import factories as bf
from billing.tests.test_claims import assert_valid_837p
from billing.x12.claims import read_837p
from practice.models import Patient
from scheduling.tests import factories as f
from tests.fixtures import in_clinic


def test_the_supervisor_goes_from_episode_to_charge_to_claim_to_the_837p(
    acme, make_user, client_for
):
    with in_clinic(acme):
        bf.billing_profile()
        visit = bf.billable_visit()
        Patient.objects.filter(pk=visit.patient.pk).update(
            address_line1="456 OAK AVE", city="SPRINGFIELD", state="IL", postal_code="62702"
        )  # an 837P's subscriber needs one
        bcba = f.practitioner(name="Noor Khan")
        bcba.npi = bf.npi()
        bcba.save(update_fields=["npi"])
        visit.episode.supervising = bcba
        visit.episode.save(update_fields=["supervising"])
        [charge] = charging.charges_create_for_visit(appointment=visit.appointment)
        assert (charge.supervising, charge.supervising_npi) == (bcba, bcba.npi)
        [claim] = services.claims_build(charges=[charge.pk])
        assert (claim.supervising, claim.supervising_npi) == (bcba, bcba.npi)
        claim = services.claim_scrub(claim=claim)
        assert claim.findings == [], claim.findings
        submission = services.claims_submit(claims=[claim])
        assert_valid_837p(submission.x12)
        [supervisor] = [
            seg.strip() for seg in submission.x12.split("~") if seg.strip().startswith("NM1*DQ*")
        ]
        assert "KHAN" in supervisor.upper() and supervisor.endswith(f"*XX*{bcba.npi}"), supervisor
        [sent] = read_837p(submission.x12).claims
        assert sent.supervising is not None and sent.supervising.npi == bcba.npi
    biller = client_for(acme, make_user(acme, "biller"))
    shown = biller.get(f"/api/v1/claims/{claim.pk}/").json()
    assert (shown["supervising"], shown["supervising_npi"]) == (bcba.pk, bcba.npi)


def test_charges_of_two_supervisors_go_on_two_claims(acme):
    with in_clinic(acme):
        bf.billing_profile()
        visit = bf.billable_visit()
        one = bf.charge(visit)
        other = bf.charge(visit, code=f.service_code("97155", 15), units=1)
        bcba = f.practitioner(name="Noor Khan")
        bcba.npi = bf.npi()
        bcba.save(update_fields=["npi"])
        Charge.objects.filter(pk=other.pk).update(supervising=bcba, supervising_npi=bcba.npi)
        built = services.claims_build(charges=[one.pk, other.pk])
        assert sorted((c.supervising_id or 0) for c in built) == [0, bcba.pk]


def test_a_supervising_npi_is_ten_digits_with_a_valid_check_digit(acme):
    with in_clinic(acme):
        claim = bf.draft_claim(bf.billable_visit().appointment)
        bcba = f.practitioner(name="Noor Khan")
        claim.supervising, claim.supervising_npi = bcba, "1234567890"  # check digit wrong
        with pytest.raises(ValidationError) as refused:
            claim.full_clean()
        assert "supervising_npi" in refused.value.message_dict
        with pytest.raises(IntegrityError), transaction.atomic():
            Claim.objects.filter(pk=claim.pk).update(supervising=bcba, supervising_npi="12345")
        with pytest.raises(IntegrityError), transaction.atomic():
            Claim.objects.filter(pk=claim.pk).update(supervising_npi="1234567893")  # no one
