"""Billing's reports, read from the ledger: A/R aging, the denial worklist, underpayments, and
each as CSV. Selectors only: nothing here writes.

**A/R aging** ages what is owed by the charge's *service date* (the date of the visit, the
one every payer's timely filing counts from), not by the first-billed date: an unbilled charge
ages too, which is the point. Money on the account without a charge (a payment not applied
yet) ages from its own date. It reads the A/R rollup the ledger's triggers keep (migrations
0004, 0007): `ArDay`, Σ open balances per (party, payer, age date), for the totals and the rows
by payer (a few rows per day, whatever the number of open charges); `ArPatient`, each
patient's total and number of open balances, to page through the patients owing by total;
and `ChargeBalance`, the open balance per charge and party, for the page's patients' buckets.
Nothing sums the ledger or every open charge per request. Its totals are Σ balances
(`ledger.patient_balance` summed over the patients), and the rollup equals a from-scratch sum
of the ledger: the tests prove both.

**Denials** are claim lines a payer paid nothing on and adjusted (the adjustments' CARC and
RARC said in plain English by `x12.reasons.explain`); an authorization reason (CARC 15, 62,
197, 198) links the authorization the charge was rendered under, or the patient's
authorization whose window covers the service date.

**Underpayments** are claim lines the payer paid on for less than the fee schedule's expected
allowed amount: what the payer allowed is its payment plus the patient responsibility (PR) it
moved to the patient, so a coinsurance is not an underpayment.

Reversals count as the kind of entry they reverse, so a reversed payment is no payment.
"""

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import overload

from django.db import connection
from django.utils import timezone

from authorizations.models import Authorization
from practice.models import Patient, Payer

from .x12.reasons import explain

ZERO = Decimal("0.00")

BUCKETS = ("0-30", "31-60", "61-90", "91-120", "120+")
BY = ("payer", "patient")

# CARCs that say the authorization was missing, invalid or exceeded.
AUTHORIZATION_REASONS = frozenset({"15", "62", "197", "198"})


# --- A/R aging -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgingRow:
    """What one payer (or the patients, as one party) or one patient owes, by age."""

    key: int | None  # the payer's or patient's id; None: patients' own responsibility
    label: str
    buckets: tuple[Decimal, ...]

    @property
    def total(self) -> Decimal:
        return sum(self.buckets, ZERO)


@dataclass(frozen=True)
class AgingReport:
    as_of: date
    by: str
    rows: tuple[AgingRow, ...]
    totals: tuple[Decimal, ...]

    @property
    def total(self) -> Decimal:
        return sum(self.totals, ZERO)


# The age in days is the as-of date minus the age date, bucketed as the report's columns.
_BUCKET = """
CASE WHEN %(as_of)s::date - b.age_date <= 30 THEN 0
     WHEN %(as_of)s::date - b.age_date <= 60 THEN 1
     WHEN %(as_of)s::date - b.age_date <= 90 THEN 2
     WHEN %(as_of)s::date - b.age_date <= 120 THEN 3
     ELSE 4 END
"""
# The rollup per (party, payer, age date), bucketed: a few rows per day of service, whatever
# the number of open charges.
_AGING_SQL = """
SELECT {key}, {bucket}, SUM(b.amount)
FROM billing_arday b
WHERE b.amount <> 0
GROUP BY 1, 2
"""
_KEYS = {
    # the payer owing, or NULL for the patients' own share (party patient)
    "payer": "CASE WHEN b.party = 'payer' THEN b.payer_id END",
    "all": "NULL::int",
}
# A page of the patients owing (any balance open), largest total first (the partial index
# `ar_patient_owing`), with their names and their open balances' buckets (the partial index
# `charge_balance_open_patient`): one statement, rows in the page's order.
_PATIENT_PAGE_SQL = """
WITH page AS (
  SELECT p.patient_id, p.amount FROM billing_arpatient p WHERE p.open_balances > 0
  ORDER BY p.amount DESC, p.patient_id
  LIMIT %(limit)s OFFSET %(offset)s
)
SELECT page.patient_id, pt.first_name, pt.last_name, {bucket}, SUM(b.amount)
FROM page
JOIN practice_patient pt ON pt.id = page.patient_id
JOIN billing_chargebalance b ON b.patient_id = page.patient_id AND b.amount <> 0
GROUP BY page.patient_id, page.amount, pt.first_name, pt.last_name, 4
ORDER BY page.amount DESC, page.patient_id
"""
# How many patients owe, and the whole A/R per bucket (`ar_aging_totals`' statement): one
# statement, what a page of the report by patient reads besides its rows.
_PATIENTS_COUNT_AND_TOTALS_SQL = """
SELECT c.n, t.bucket, t.amount
FROM (SELECT COUNT(*) AS n FROM billing_arpatient p WHERE p.open_balances > 0) c
LEFT JOIN ({totals}) t(key, bucket, amount) ON true
"""


def _bucket_sums(sql: str, as_of: date, **params) -> dict:
    sums: dict[int | None, list[Decimal]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, {"as_of": as_of, **params})
        for key, bucket, amount in cursor.fetchall():
            sums.setdefault(key, [ZERO] * len(BUCKETS))[bucket] += amount
    return sums


def _aging_sql(key: str) -> str:
    return _AGING_SQL.format(key=_KEYS[key], bucket=_BUCKET)


class AgingRows:
    """The rows of an A/R aging, read a page at a time: `len()` counts them, a slice reads
    only its rows (and names only its patients), as Django's and DRF's paginators ask. By
    payer the rows are few and read whole; by patient a page reads the patients of the page.

    A patient is a row while any of their balances is open (not zero: so the rows' buckets
    add up to the totals), ordered by their total (largest first), then by id: a stable order
    to page through."""

    def __init__(self, *, by: str, as_of: date):
        if by not in BY:
            raise ValueError(f"by must be one of {BY}")
        self.by = by
        self.as_of = as_of
        self._count: int | None = None
        self._totals: tuple[Decimal, ...] | None = None
        self._payers: list[AgingRow] | None = None

    def count(self) -> int:
        if self._count is None:
            if self.by == "payer":
                self._count = len(self._payer_rows())
            else:  # the totals come with the count: an answer reads them next
                totals = [ZERO] * len(BUCKETS)
                with connection.cursor() as cursor:
                    cursor.execute(
                        _PATIENTS_COUNT_AND_TOTALS_SQL.format(totals=_aging_sql("all")),
                        {"as_of": self.as_of},
                    )
                    for count, bucket, amount in cursor.fetchall():
                        self._count = count
                        if bucket is not None:
                            totals[bucket] += amount
                self._totals = tuple(totals)
        assert self._count is not None
        return self._count

    def __len__(self) -> int:
        return self.count()

    @overload
    def __getitem__(self, index: int) -> AgingRow: ...
    @overload
    def __getitem__(self, index: slice) -> list[AgingRow]: ...
    def __getitem__(self, index: int | slice) -> AgingRow | list[AgingRow]:
        if isinstance(index, int):
            found = self[index : index + 1]
            if not found:
                raise IndexError(index)
            return found[0]
        if self.by == "payer":
            return self._payer_rows()[index]
        start, stop, step = index.indices(self.count())
        if step != 1:
            raise ValueError("pages are contiguous")
        return self._patient_rows(offset=start, limit=max(0, stop - start))

    def __iter__(self) -> Iterator[AgingRow]:
        return iter(self[0 : self.count()])

    def totals(self) -> tuple[Decimal, ...]:
        """The whole report's sum per bucket. By payer, the rows' (they cover every balance:
        each payer's and the patients' own share), so an answer reads the rollup once."""
        if self.by != "payer":
            if self._totals is None:
                self.count()
            assert self._totals is not None
            return self._totals
        totals = [ZERO] * len(BUCKETS)
        for row in self._payer_rows():
            for index, amount in enumerate(row.buckets):
                totals[index] += amount
        return tuple(totals)

    def _payer_rows(self) -> list[AgingRow]:
        if self._payers is None:
            sums = _bucket_sums(_aging_sql("payer"), self.as_of)
            labels = _payer_names([k for k in sums if k is not None])
            rows = [
                AgingRow(
                    key=key, label=labels.get(key, "Patients (their own share)"), buckets=tuple(b)
                )
                for key, b in sums.items()
                if any(b)
            ]
            rows.sort(key=lambda row: (-row.total, row.label))
            self._payers = rows
        return self._payers

    def _patient_rows(self, *, offset: int, limit: int) -> list[AgingRow]:
        if not limit:
            return []
        rows: dict[int, tuple[str, list[Decimal]]] = {}
        with connection.cursor() as cursor:
            cursor.execute(
                _PATIENT_PAGE_SQL.format(bucket=_BUCKET),
                {"limit": limit, "offset": offset, "as_of": self.as_of},
            )
            for pk, first_name, last_name, bucket, amount in cursor.fetchall():
                _, buckets = rows.setdefault(
                    pk, (f"{first_name} {last_name}", [ZERO] * len(BUCKETS))
                )  # as Patient.full_name
                buckets[bucket] += amount
        return [
            AgingRow(key=pk, label=label, buckets=tuple(buckets))
            for pk, (label, buckets) in rows.items()
        ]


def ar_aging_rows(*, by: str = "payer", as_of: date | None = None) -> AgingRows:
    """The rows of the A/R by age of the service date, `by` payer (one row per payer owing,
    and one for what the patients owe themselves) or by patient (payers' and own share
    together), largest total first, to be read a page at a time. `as_of` defaults to today in
    the clinic's zone."""
    return AgingRows(by=by, as_of=as_of or timezone.localdate())


def ar_aging_totals(*, as_of: date | None = None) -> tuple[Decimal, ...]:
    """The whole A/R per age bucket: Σ every balance (what every page's rows add up to)."""
    sums = _bucket_sums(_aging_sql("all"), as_of or timezone.localdate())
    return tuple(sums.get(None, [ZERO] * len(BUCKETS)))


def ar_aging(*, by: str = "payer", as_of: date | None = None) -> AgingReport:
    """The whole A/R aging (every row: the CSV export, the checks), by payer or patient."""
    rows = ar_aging_rows(by=by, as_of=as_of)
    return AgingReport(
        as_of=rows.as_of,
        by=by,
        rows=tuple(rows),
        totals=ar_aging_totals(as_of=rows.as_of),
    )


def _payer_names(keys: list[int]) -> dict[int | None, str]:
    return dict(Payer.objects.filter(pk__in=keys).values_list("pk", "name"))


# --- Claim lines and their money --------------------------------------------------------------

# Per claim line the payer's money on it, each reversal counted as the kind it reverses:
# paid (payments), patient responsibility moved by the payer (PR transfers), adjustments.
_LINE_MONEY = """
WITH money AS (
    SELECT e.claim_line_id AS line_id,
        -SUM(e.amount) FILTER (WHERE COALESCE(r.kind, e.kind) = 'payment') AS paid,
        -SUM(e.amount) FILTER (
            WHERE COALESCE(r.kind, e.kind) = 'transfer' AND e.group_code = 'PR'
        ) AS patient_share,
        COUNT(*) FILTER (WHERE COALESCE(r.kind, e.kind) = 'adjustment') AS adjustments
    FROM billing_ledgerentry e
    LEFT JOIN billing_ledgerentry r ON r.id = e.reverses_id
    WHERE e.claim_line_id IS NOT NULL AND e.party = 'payer'
    GROUP BY e.claim_line_id
)
SELECT l.id, l.claim_id, cl.status, cl.patient_id, cl.payer_id, ch.id, ch.service_date,
    sc.code, ch.modifiers, l.units, l.amount, ch.expected_allowed, ch.authorization_id,
    COALESCE(m.paid, 0), COALESCE(m.patient_share, 0)
FROM money m
JOIN billing_claimline l ON l.id = m.line_id
JOIN billing_claim cl ON cl.id = l.claim_id
JOIN billing_charge ch ON ch.id = l.charge_id
JOIN practice_servicecode sc ON sc.id = ch.service_code_id
WHERE cl.status NOT IN ('replaced', 'voided') AND {where}
ORDER BY ch.service_date, l.id
"""


@dataclass(frozen=True)
class _Line:
    line_id: int
    claim_id: int
    claim_status: str
    patient_id: int
    payer_id: int
    charge_id: int
    service_date: date
    code: str
    modifiers: str
    units: int
    amount: Decimal
    expected_allowed: Decimal | None
    authorization_id: int | None
    paid: Decimal
    patient_share: Decimal


def _lines(where: str) -> list[_Line]:
    with connection.cursor() as cursor:
        cursor.execute(_LINE_MONEY.format(where=where))
        return [_Line(*row) for row in cursor.fetchall()]


def _names(lines: Sequence[_Line]) -> tuple[dict[int, str], dict[int, str]]:
    patients = {
        p.pk: p.full_name for p in Patient.objects.filter(pk__in={x.patient_id for x in lines})
    }
    payers = dict(
        Payer.objects.filter(pk__in={x.payer_id for x in lines}).values_list("pk", "name")
    )
    return patients, payers


# --- Denials -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    group: str
    code: str
    remarks: tuple[str, ...]
    amount: Decimal
    text: str


@dataclass(frozen=True)
class Denial:
    claim_id: int
    claim_status: str
    line_id: int
    patient_id: int
    patient: str
    payer_id: int
    payer: str
    service_date: date
    code: str
    units: int
    amount: Decimal
    reasons: tuple[Reason, ...]
    authorization_id: int | None = None
    authorization_number: str = ""

    @property
    def explanation(self) -> str:
        return " ".join(reason.text for reason in self.reasons)

    @property
    def authorization_reason(self) -> bool:
        return any(reason.code in AUTHORIZATION_REASONS for reason in self.reasons)


def denials() -> list[Denial]:
    """Claim lines the payer paid nothing on and adjusted, oldest service first, each with
    the adjustments still standing (reversed ones drop out) in plain English; an
    authorization reason carries the authorization to look at."""
    lines = _lines("m.adjustments > 0 AND COALESCE(m.paid, 0) = 0")
    reasons = _line_reasons([x.line_id for x in lines])
    lines = [x for x in lines if reasons.get(x.line_id)]
    patients, payers = _names(lines)
    authorizations = _authorizations_for(
        [x for x in lines if any(r.code in AUTHORIZATION_REASONS for r in reasons[x.line_id])]
    )
    result = []
    for x in lines:
        auth = authorizations.get(x.line_id)
        result.append(
            Denial(
                claim_id=x.claim_id,
                claim_status=x.claim_status,
                line_id=x.line_id,
                patient_id=x.patient_id,
                patient=patients.get(x.patient_id, ""),
                payer_id=x.payer_id,
                payer=payers.get(x.payer_id, ""),
                service_date=x.service_date,
                code=x.code + (f"-{x.modifiers}" if x.modifiers else ""),
                units=x.units,
                amount=x.amount,
                reasons=tuple(reasons[x.line_id]),
                authorization_id=auth.pk if auth else None,
                authorization_number=auth.number if auth else "",
            )
        )
    return result


_REASONS_SQL = """
SELECT e.claim_line_id, e.group_code, e.reason_code, e.remark_codes, -SUM(e.amount)
FROM billing_ledgerentry e
LEFT JOIN billing_ledgerentry r ON r.id = e.reverses_id
WHERE e.claim_line_id = ANY(%s) AND e.party = 'payer' AND e.reason_code <> ''
    AND COALESCE(r.kind, e.kind) = 'adjustment'
GROUP BY e.claim_line_id, e.group_code, e.reason_code, e.remark_codes
HAVING SUM(e.amount) <> 0
ORDER BY e.claim_line_id, 5 DESC
"""


def _line_reasons(line_ids: list[int]) -> dict[int, list[Reason]]:
    found: dict[int, list[Reason]] = {}
    if not line_ids:
        return found
    with connection.cursor() as cursor:
        cursor.execute(_REASONS_SQL, [line_ids])
        for line_id, group, code, remarks, amount in cursor.fetchall():
            found.setdefault(line_id, []).append(
                Reason(
                    group=group,
                    code=code,
                    remarks=tuple(remarks),
                    amount=amount,
                    text=explain(group, code, list(remarks)),
                )
            )
    return found


def _authorizations_for(lines: Sequence[_Line]) -> dict[int, Authorization]:
    """The authorization each line's charge was rendered under, else the patient's whose
    window covers the service date (the most recent first)."""
    named = {x.authorization_id for x in lines if x.authorization_id}
    patients = {x.patient_id for x in lines if not x.authorization_id}
    rows = list(
        Authorization.objects.filter(pk__in=named)
        | Authorization.objects.filter(patient_id__in=patients)
    )
    by_id = {a.pk: a for a in rows}
    found: dict[int, Authorization] = {}
    for x in lines:
        if x.authorization_id in by_id:
            found[x.line_id] = by_id[x.authorization_id]
            continue
        covering = [
            a
            for a in rows
            if a.patient_id == x.patient_id and a.start_date <= x.service_date <= a.end_date
        ]
        if covering:
            found[x.line_id] = max(covering, key=lambda a: (a.start_date, a.pk))
    return found


# --- Underpayments -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Underpayment:
    claim_id: int
    line_id: int
    patient_id: int
    patient: str
    payer_id: int
    payer: str
    service_date: date
    code: str
    units: int
    amount: Decimal
    expected_allowed: Decimal
    paid: Decimal
    patient_share: Decimal

    @property
    def allowed(self) -> Decimal:
        return self.paid + self.patient_share

    @property
    def shortfall(self) -> Decimal:
        return self.expected_allowed - self.allowed


def underpayments() -> list[Underpayment]:
    """Claim lines paid (something) for less than the expected allowed amount: paid plus the
    patient's share below the charge's `expected_allowed` (the fee schedule's per unit times
    the units). Lines paid nothing are denials, not underpayments."""
    lines = _lines(
        "ch.expected_allowed IS NOT NULL AND COALESCE(m.paid, 0) > 0 "
        "AND COALESCE(m.paid, 0) + COALESCE(m.patient_share, 0) < ch.expected_allowed"
    )
    patients, payers = _names(lines)
    return [
        Underpayment(
            claim_id=x.claim_id,
            line_id=x.line_id,
            patient_id=x.patient_id,
            patient=patients.get(x.patient_id, ""),
            payer_id=x.payer_id,
            payer=payers.get(x.payer_id, ""),
            service_date=x.service_date,
            code=x.code + (f"-{x.modifiers}" if x.modifiers else ""),
            units=x.units,
            amount=x.amount,
            expected_allowed=x.expected_allowed or ZERO,
            paid=x.paid,
            patient_share=x.patient_share,
        )
        for x in lines
    ]


# --- CSV -----------------------------------------------------------------------------------------


@dataclass
class Table:
    """A report as a header and rows of strings (CSV, the admin's tables)."""

    header: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.header)
        writer.writerows(_safe(row) for row in self.rows)
        return out.getvalue()


def _safe(row: Iterable[str]) -> list[str]:
    """Cells a spreadsheet would run as a formula ("=", "+", "-", "@" first) are quoted with an
    apostrophe (CSV injection); amounts are written as plain numbers, so a negative credit is
    the one legitimate leading "-" and stays."""
    out = []
    for cell in row:
        text = str(cell)
        if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not _number(text)):
            text = "'" + text
        out.append(text)
    return out


def _number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def aging_table(report: AgingReport) -> Table:
    first = "payer" if report.by == "payer" else "patient"
    table = Table(header=(f"{first}_id", first, *BUCKETS, "total"))
    for row in report.rows:
        key = "" if row.key is None else str(row.key)
        table.rows.append((key, row.label, *(str(b) for b in row.buckets), str(row.total)))
    table.rows.append(("", "Total", *(str(t) for t in report.totals), str(report.total)))
    return table


def denials_table(rows: Sequence[Denial]) -> Table:
    table = Table(
        header=(
            "claim", "line", "claim_status", "patient_id", "patient", "payer", "service_date",
            "code", "units", "amount", "reason_codes", "explanation", "authorization",
        )
    )  # fmt: skip
    for d in rows:
        codes = " ".join(f"{r.group}-{r.code}" for r in d.reasons)
        table.rows.append(
            (
                f"C{d.claim_id}", str(d.line_id), d.claim_status, str(d.patient_id), d.patient,
                d.payer, d.service_date.isoformat(), d.code, str(d.units), str(d.amount), codes,
                d.explanation, d.authorization_number,
            )
        )  # fmt: skip
    return table


def underpayments_table(rows: Sequence[Underpayment]) -> Table:
    table = Table(
        header=(
            "claim", "line", "patient_id", "patient", "payer", "service_date", "code", "units",
            "charged", "expected_allowed", "paid", "patient_share", "shortfall",
        )
    )  # fmt: skip
    for u in rows:
        table.rows.append(
            (
                f"C{u.claim_id}", str(u.line_id), str(u.patient_id), u.patient, u.payer,
                u.service_date.isoformat(), u.code, str(u.units), str(u.amount),
                str(u.expected_allowed), str(u.paid), str(u.patient_share), str(u.shortfall),
            )
        )  # fmt: skip
    return table
