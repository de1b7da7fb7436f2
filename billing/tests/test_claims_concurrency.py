"""Submissions racing on the real database (committed transactions, one connection per
thread): control numbers stay unique within each clinic, and a claim is sent once."""

import threading
from collections.abc import Callable

from django.db import connection

from billing import claims as services
from billing.models import Claim, Submission
from billing.tests import factories as bf
from billing.x12.claims import read_837p
from billing.x12.validate import validate
from tests.fixtures import in_clinic


def _race(jobs: list[Callable[[], object]]) -> list[object]:
    """Run `jobs` at once (a barrier), each in its own thread and connection; their results
    or the errors they raised, in order."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(index: int, job: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = job()
        except Exception as error:  # the refusal is the result
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _ready_claims(clinic, count: int) -> list[int]:
    with in_clinic(clinic):
        bf.billing_profile()
        ids = []
        for _ in range(count):
            made = bf.charge(bf.billable_visit())
            [claim] = services.claims_build(charges=[made.pk])
            ids.append(services.claim_scrub(claim=claim).pk)
        return ids


def _submit(clinic, claim_id: int) -> Callable[[], int]:
    def job() -> int:
        with in_clinic(clinic):
            return services.claims_submit(claims=[Claim.objects.get(pk=claim_id)]).pk

    return job


def test_concurrent_submissions_in_two_clinics_never_share_a_control_number_within_one(
    committed_acme, committed_globex
):
    clinics = {"acme": committed_acme, "globex": committed_globex}
    claims = {slug: _ready_claims(clinic, 3) for slug, clinic in clinics.items()}
    jobs = [_submit(clinics[slug], pk) for slug, ids in claims.items() for pk in ids]
    results = _race(jobs)
    assert all(isinstance(r, int) for r in results), results
    for slug, clinic in clinics.items():
        with in_clinic(clinic):
            numbers = []
            for submission in Submission.objects.all():
                assert validate(submission.x12).ok
                batch = read_837p(submission.x12)
                assert batch.interchange_control_number == submission.pk
                numbers.append(batch.interchange_control_number)
            assert len(numbers) == len(set(numbers)) == 3, (slug, numbers)
            assert set(Claim.objects.values_list("status", flat=True)) == {"submitted"}


def test_one_claim_submitted_twice_at_once_is_sent_once(committed_acme):
    [claim_id] = _ready_claims(committed_acme, 1)
    results = _race([_submit(committed_acme, claim_id), _submit(committed_acme, claim_id)])
    sent = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, services.ClaimNotEditableError)]
    assert (len(sent), len(refused)) == (1, 1), results
    with in_clinic(committed_acme):
        assert Submission.objects.count() == 1
        assert Claim.objects.get(pk=claim_id).submission_id == sent[0]
