"""Time the 837P side of billing/x12 on 1,000 claims: build the file, validate it with pyx12,
read it back and scrub it (the issue's target: 1,000 claims generated in 5 s or less).

    .venv/bin/python bench/x837.py [--claims 1000]

Pure Python: no database, no Django settings. Prints one line per step, in seconds.
"""

import argparse
import sys
import time
from datetime import date, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from billing.x12.claims import (  # noqa: E402
    Address,
    BillingProvider,
    Claim,
    ClaimBatch,
    Patient,
    Payer,
    Provider,
    Receiver,
    ServiceLine,
    Submitter,
    Subscriber,
    build_837p,
    read_837p,
)
from billing.x12.scrub import scrub  # noqa: E402
from billing.x12.validate import validate  # noqa: E402


def batch(claims: int) -> ClaimBatch:
    """Claims of ABA visits: one patient (a child on a parent's plan) every four claims, two
    lines each (97153:HM × 8 and 97155:HO × 1)."""
    address = Address("123 MAIN ST", "SPRINGFIELD", "IL", "627011234")
    rendering = Provider("SMITH", "JANE", "1245319599", "103K00000X")
    payer = Payer("BLUE CROSS", "BCBS01", "CI")
    out = []
    for n in range(claims):
        family = n // 4
        subscriber = Subscriber(
            "DOE", f"PARENT{family}", f"MEM{family:06d}", address, date(1985, 3, 2), "F"
        )
        patient = Patient("DOE", f"CHILD{family}", address, date(2017, 9, 30), "M")
        day = date(2027, 3, 1) + timedelta(days=n % 28)
        lines = (
            ServiceLine(f"L{n}-1", "97153", Decimal("480.00"), Decimal(8), day, (1,), ("HM",)),
            ServiceLine(f"L{n}-2", "97155", Decimal("80.00"), Decimal(1), day, (1, 2), ("HO",)),
        )
        out.append(
            Claim(
                claim_id=f"ACME-{n:06d}",
                total_charge=Decimal("560.00"),
                place_of_service="12",
                subscriber=subscriber,
                payer=payer,
                patient=patient,
                diagnoses=("F84.0", "F80.2"),
                lines=lines,
                prior_authorization=f"AUTH{family:05d}",
                rendering=rendering,
            )
        )
    return ClaimBatch(
        submitter=Submitter("ACME ABA THERAPY", "SUB123", "BILLING DEPT", "5555551234", "ACMEABA"),
        receiver=Receiver("CLEARINGHOUSE", "RCV123", "CLEARHOUSE"),
        billing_provider=BillingProvider("ACME ABA THERAPY", "1234567893", "123456789", address),
        claims=tuple(out),
        interchange_control_number=1,
        group_control_number=1,
        transaction_control_number=1,
        reference="BENCH",
        created_on=date(2027, 3, 31),
        created_at=clock_time(9, 0),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=1000)
    count = parser.parse_args().claims
    claims = batch(count)

    started = time.perf_counter()
    text = build_837p(claims)
    built = time.perf_counter()
    errors = validate(text).errors
    validated = time.perf_counter()
    back = read_837p(text)
    read = time.perf_counter()
    findings = scrub(back, submission_date=date(2027, 4, 1))
    scrubbed = time.perf_counter()

    assert not errors, errors[:5]
    assert back == claims and not findings
    print(f"{count} claims, {len(text.splitlines())} segments, {len(text):,} bytes")
    print(f"build    {built - started:6.2f} s")
    print(f"validate {validated - built:6.2f} s  (pyx12)")
    print(f"read     {read - validated:6.2f} s")
    print(f"scrub    {scrubbed - read:6.2f} s")


if __name__ == "__main__":
    main()
