"""Posting an 835: a payer's payments and adjustments of our claims, into the money ledger.

`remittance_post` reads the whole file first (`billing.x12.remittance.parse_835`: pyx12's
structural check, then every line, claim and the payment balancing, and every code known); any
finding refuses the file whole (`X12Refused`, 400 naming the segment) and nothing is written.
A file that reads clean is posted in one transaction:

- each transaction set is a `Remittance`, posted once per (payer id, trace number): the unique
  constraint `remittance_trace_posts_once`. A second import of a trace, even a concurrent one
  (its INSERT waits on the first's index entry, then fails), posts nothing and answers with the
  remittance already posted (`PostingResult.created` False: the API's 200, not 201);
- each claim payment (CLP) is matched to our claim by CLP01 (our control number "C<id>") and
  its lines by REF*6R (the claim line's id), then code + date + units (`match_lines`). A CLP
  we cannot match whole (unknown claim, a claim never submitted, a line that pairs with none of
  ours or whose charge is not what we billed) is kept as a `RemittanceClaim` with no claim:
  the worklist, never dropped, nothing posted for it until a biller matches it;
- a matched line posts, on its charge: the payer's payment (negative, payer); CO/OA/PI
  adjustments (negative, payer, with CARC and RARCs); PR as patient responsibility (a transfer
  from the payer to the patient). Nothing takes the payer's balance of a charge below zero
  silently: a payment beyond it is an OVERPAYMENT entry (what the clinic owes the payer back),
  and adjustments and transfers are capped at what the payer still owed (a second remittance
  of a paid claim writes off nothing twice and bills the patient's share once);
- claim-level adjustments (CAS in 2100) are posted on the claim's first line;
- a patient who owes more after the posting (PR) and holds a credit gets it applied;
- provider-level adjustments (PLB: interest, recoupments, forward balances...) are posted to
  the clinic's account with the payer (`ProviderAdjustment`, append-only), not to a patient:
  the file balances only when BPR02 = Σ CLP04 − Σ PLB (else refused, naming BPR and the PLB);
- a reversal (CLP02 22) reverses every entry earlier remittances posted for the claim and
  reopens it (accepted), so a corrected CLP after it posts afresh;
- the claim's status follows the money: every line paid nothing and owed nothing by the
  patient (all denied, e.g. CO-197) → denied; the payer owes nothing more and no line was
  denied → paid; otherwise partially paid.

Locks: the matched claims' rows (`FOR UPDATE`, in id order), so two remittances of one claim
post one after the other and each reads the balances the other left. Entries are written with
one bulk INSERT per file; balances are read with one grouped query.
"""

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from billing.x12 import remittance as x12
from clinic.errors import ApplicationError
from practice.models import Patient, Payer, ServiceCode

from .credits import credit_apply
from .ledger import CENT, ZERO
from .models import (
    Charge,
    Claim,
    ClaimLine,
    LedgerEntry,
    Payment,
    ProviderAdjustment,
    Remittance,
    RemittanceClaim,
)
from .signals import claims_status_changed, remittance_posted

Kind = LedgerEntry.Kind
Party = LedgerEntry.Party

CONTROL_NUMBER = re.compile(r"^C([0-9]{1,18})$")
# Statuses a claim has once the payer may answer it with money.
PAYABLE = frozenset(
    {
        Claim.Status.SUBMITTED,
        Claim.Status.ACCEPTED,
        Claim.Status.REJECTED,
        Claim.Status.PAID,
        Claim.Status.PARTIALLY_PAID,
        Claim.Status.DENIED,
        Claim.Status.APPEALED,
    }
)
# An overpayment and its reversal: what the clinic owes a payer back, not what it owes us.
OVERPAID = Q(kind=Kind.OVERPAYMENT) | Q(reverses__kind=Kind.OVERPAYMENT)
PAYMENT_METHODS = {"CHK": Payment.Method.CHECK}  # ACH, FWT, BOP: EFT


@dataclass
class PostingResult:
    """What a file posted: its remittances (new or, for a trace posted before, the earlier
    one), and whether any of them is new."""

    remittances: list[Remittance] = field(default_factory=list)
    created: bool = False


@dataclass(eq=False)
class _Claim:
    """What a posting reads and writes of one of our claims (read with its lines in one query,
    no model instances: a 1,000-claim file read 3,000 of them)."""

    pk: int
    patient_id: int
    payer_id: int
    status: str
    status_reason: str
    payer_claim_number: str
    line_list: list["_Line"] = field(default_factory=list)


@dataclass(eq=False)
class _Line:
    """One of our claim lines, as `match_lines` and the posting see it."""

    pk: int
    claim: _Claim
    charge_id: int
    amount: Decimal
    units: Decimal
    code: str
    service_date: date

    @property
    def reference(self) -> str:
        return str(self.pk)


@dataclass(eq=False, slots=True)
class _Entry:
    """A ledger entry to write (by COPY: `_entries_insert`), with its columns' names."""

    patient_id: int
    party: str
    payer_id: int | None
    charge_id: int | None
    claim_id: int | None
    claim_line_id: int | None
    remittance_id: int | None
    payment_id: int | None
    kind: str
    amount: Decimal
    posted_on: date
    created_by_id: int | None
    group_code: str = ""
    reason_code: str = ""
    remark_codes: list[str] = field(default_factory=list)
    reverses_id: int | None = None
    memo: str = ""


def remittance_post(*, text: str, file_name: str = "", by=None) -> PostingResult:
    """Read, check and post an 835 file (see the module's docstring). `X12Refused` when the
    file is malformed or does not balance, with nothing written."""
    parsed = x12.parse_835(text)  # outside the transaction: refusing takes no lock
    result = PostingResult()
    with transaction.atomic():
        for one in parsed:
            remittance, created = _remittance_insert(one, text, file_name, by)
            result.remittances.append(remittance)
            if created:
                result.created = True
                _post(remittance, one, by)
                remittance_posted.send(sender=Remittance, remittance_id=remittance.pk)
    return result


def _remittance_insert(
    one: x12.Remittance, text: str, file_name: str, by
) -> tuple[Remittance, bool]:
    """Insert the remittance, or find the one that holds its trace already. The savepoint
    keeps the outer transaction alive when the unique constraint refuses the INSERT (after the
    concurrent winner committed: the INSERT waits for it)."""
    payer_identifier = one.payer_id or one.payer.id
    # TRN03 is often "1" + the payer's EIN, not its EDI id: the payer is known when either
    # names it, and a remittance of an unknown payer matches claims by control number alone.
    known = [i for i in (one.payer_id, one.payer.id) if i]
    payer = Payer.objects.filter(edi_payer_id__in=known).order_by("pk").first()
    try:
        with transaction.atomic():
            remittance = Remittance.objects.create(
                payer=payer,
                payer_identifier=payer_identifier,
                trace_number=one.trace_number,
                payment_amount=_signed_payment(one),
                payment_method=one.payment.method,
                payment_date=one.payment.date,
                x12=text,
                file_name=file_name[:200],
                posted_by=by,
            )
    except IntegrityError:
        existing = Remittance.objects.get(
            payer_identifier=payer_identifier, trace_number=one.trace_number
        )
        return existing, False
    return remittance, True


def _signed_payment(one: x12.Remittance) -> Decimal:
    amount = one.payment.amount
    return -amount if one.payment.credit_debit == "D" else amount


class _Posting:
    """The entries of one remittance, built in memory and inserted at once, with the payer
    balances of the charges they touch kept current as entries are added."""

    def __init__(self, remittance: Remittance, payment: Payment | None, by, today: date):
        self.remittance = remittance
        self.payment = payment
        self.by = by
        self.today = today
        self.entries: list[_Entry] = []
        self.payer_owes: dict[int, Decimal] = {}

    def add(self, line: _Line, party: str, kind: str, amount: Decimal, **extra) -> None:
        amount = amount.quantize(CENT)
        if amount == ZERO:
            return
        claim = line.claim
        paid = kind in (Kind.PAYMENT, Kind.OVERPAYMENT) and self.payment is not None
        self.entries.append(
            _Entry(
                patient_id=claim.patient_id,
                party=party,
                payer_id=claim.payer_id if party == Party.PAYER else None,
                charge_id=line.charge_id,
                claim_id=claim.pk,
                claim_line_id=line.pk,
                remittance_id=self.remittance.pk,
                payment_id=self.payment.pk if paid and self.payment is not None else None,
                kind=kind,
                amount=amount,
                posted_on=self.today,
                created_by_id=getattr(self.by, "pk", None),
                **extra,
            )
        )
        if party == Party.PAYER and kind != Kind.OVERPAYMENT:
            self.payer_owes[line.charge_id] = self.payer_owes.get(line.charge_id, ZERO) + amount

    def owed(self, line: _Line) -> Decimal:
        return max(self.payer_owes.get(line.charge_id, ZERO), ZERO)

    def adjust(self, line: _Line, adjustment: x12.Adjustment, remarks: Iterable[str]) -> None:
        """One CAS: PR moves to the patient, the other groups are written off; both at most
        what the payer still owes on the charge (negative amounts, a payer's correction, are
        posted as they come)."""
        amount = adjustment.amount
        if amount > ZERO:
            amount = min(amount, self.owed(line))
        codes = {
            "group_code": adjustment.group,
            "reason_code": adjustment.reason,
            "remark_codes": list(remarks),
        }
        memo = f"{adjustment.group}-{adjustment.reason}"
        if adjustment.group == "PR":
            self.add(line, Party.PAYER, Kind.TRANSFER, -amount, memo=memo, **codes)
            self.add(line, Party.PATIENT, Kind.TRANSFER, amount, memo=memo, **codes)
        else:
            self.add(line, Party.PAYER, Kind.ADJUSTMENT, -amount, memo=memo, **codes)

    def pay(self, line: _Line, paid: Decimal, trace: str) -> None:
        """The payer's payment of a line; what exceeds its balance is an overpayment."""
        applied = min(paid, self.owed(line)) if paid > ZERO else paid
        self.add(line, Party.PAYER, Kind.PAYMENT, -applied, memo=f"835 {trace}")
        self.add(
            line,
            Party.PAYER,
            Kind.OVERPAYMENT,
            -(paid - applied),
            memo=f"835 {trace}: paid beyond the payer's balance (owed back to the payer)",
        )


def _post(remittance: Remittance, one: x12.Remittance, by) -> None:
    today = timezone.localdate()
    payment = None
    if remittance.payment_amount > ZERO and remittance.payer is not None:
        payment = Payment.objects.create(
            payer=remittance.payer,
            remittance=remittance,
            method=PAYMENT_METHODS.get(one.payment.method, Payment.Method.EFT),
            amount=remittance.payment_amount,
            reference=one.trace_number[:100],
            received_at=timezone.now(),
            taken_by=by,
        )
    claims = _claims_locked(one)
    posting = _Posting(remittance, payment, by, today)
    posting.payer_owes = _payer_balances(claims.values())
    reversed_ids = _reversed_claim_ids(claims.values(), one)
    if reversed_ids:
        _reverse_claims(reversed_ids, remittance, by, today, posting)
    records: list[RemittanceClaim] = []
    touched: dict[int, list[tuple[x12.ClaimPayment, list[tuple[x12.ServiceLine, _Line]]]]]
    touched = defaultdict(list)
    for clp in one.claims:
        claim = claims.get(_claim_pk(clp.claim_id) or 0)
        if claim is not None and remittance.payer_id not in (None, claim.payer_id):
            claim = None  # another payer's claim: not this payer's to pay
        pairs = _pairs(clp, claim) if claim is not None and not clp.is_reversal else None
        records.append(
            RemittanceClaim(
                remittance=remittance,
                claim_id=(
                    claim.pk
                    if claim is not None and (pairs is not None or clp.is_reversal)
                    else None
                ),
                patient_control_number=clp.claim_id[:38],
                status_code=clp.status[:2],
                charge_amount=clp.charge,
                paid_amount=clp.paid,
                patient_responsibility=clp.patient_responsibility,
                payer_claim_number=clp.payer_claim_number[:50],
            )
        )
        if claim is None or pairs is None:
            continue
        _post_claim(posting, clp, pairs)
        touched[claim.pk].append((clp, pairs))
    RemittanceClaim.objects.bulk_create(records)
    _entries_insert(posting.entries)
    _provider_adjustments_post(remittance, one, by, today)
    _credits_apply(posting.entries, by)
    _claim_statuses(claims, touched, posting)


def _provider_adjustments_post(
    remittance: Remittance, one: x12.Remittance, by, today: date
) -> None:
    """The file's PLB adjustments, each a row of the provider-level ledger (the clinic's
    account with the payer, no patient's): the file balanced already (BPR = Σ CLP04 − Σ PLB),
    so these rows are what makes the payment add up. A reference naming one of our claims
    ("C<id>", e.g. the claim a WO recoupment is for) links it."""
    if not one.provider_adjustments:
        return
    named = {
        pk
        for adjustment in one.provider_adjustments
        if (pk := _claim_pk(adjustment.reference)) is not None
    }
    ours = set(Claim.objects.filter(pk__in=named).values_list("pk", flat=True))
    ProviderAdjustment.objects.bulk_create(
        ProviderAdjustment(
            remittance=remittance,
            payer_id=remittance.payer_id,
            provider=adjustment.provider[:50],
            fiscal_period=adjustment.fiscal_period,
            reason=adjustment.reason,
            reference=adjustment.reference[:50],
            claim_id=pk if (pk := _claim_pk(adjustment.reference)) in ours else None,
            amount=adjustment.amount.quantize(CENT),
            segment=adjustment.position,
            posted_on=today,
            created_by=by,
        )
        for adjustment in one.provider_adjustments
        if adjustment.amount.quantize(CENT) != ZERO
    )


def _credits_apply(entries: list[_Entry], by) -> None:
    """The patients this posting made owe (patient responsibility) and who hold a credit get
    it applied (`credits.credit_apply`, under their row locks, in id order after the claims'
    locks). One query finds them; the others cost nothing."""
    owing = {e.patient_id for e in entries if e.party == Party.PATIENT and e.amount > ZERO}
    if not owing:
        return
    holding = (
        LedgerEntry.objects.filter(patient_id__in=owing, party=Party.PATIENT, charge__isnull=True)
        .values("patient_id")
        .annotate(total=Sum("amount"))
        .filter(total__lt=0)
        .values_list("patient_id", flat=True)
    )
    for patient in Patient.objects.filter(pk__in=list(holding)).order_by("pk"):
        credit_apply(patient=patient, by=by)


def provider_balance(*, payer: Payer) -> Decimal:
    """What a payer has withheld from the clinic's payments at the provider level, net of
    what it added (interest and the like): the sum of its provider adjustments."""
    total = ProviderAdjustment.objects.filter(payer=payer).aggregate(total=Sum("amount"))["total"]
    return total or ZERO


# The columns a posting writes, in COPY order.
_COLUMNS = (
    "patient_id",
    "party",
    "payer_id",
    "charge_id",
    "claim_id",
    "claim_line_id",
    "remittance_id",
    "payment_id",
    "kind",
    "amount",
    "group_code",
    "reason_code",
    "remark_codes",
    "reverses_id",
    "memo",
    "posted_on",
    "created_at",
    "created_by_id",
)


def _entries_insert(entries: list[_Entry]) -> None:
    """Insert a file's new entries with one COPY: Django's bulk_create resolved every field
    of every row as an expression, a second of a 1,000-claim file. The constraints and the
    append-only trigger hold for COPY as for INSERT."""
    if not entries:
        return
    now = timezone.now()
    columns = ", ".join(_COLUMNS)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own, for COPY (the schema is on the connection)
        with raw.copy(f"COPY {LedgerEntry._meta.db_table} ({columns}) FROM STDIN") as copy:
            for e in entries:
                copy.write_row(
                    (
                        e.patient_id, e.party, e.payer_id, e.charge_id, e.claim_id,
                        e.claim_line_id, e.remittance_id, e.payment_id, e.kind, e.amount,
                        e.group_code, e.reason_code, e.remark_codes, e.reverses_id,
                        e.memo, e.posted_on, now, e.created_by_id,
                    )
                )  # fmt: skip


def _post_claim(
    posting: _Posting, clp: x12.ClaimPayment, pairs: list[tuple[x12.ServiceLine, _Line]]
) -> None:
    for paid_line, ours in pairs:
        posting.pay(ours, paid_line.paid, posting.remittance.trace_number)
        for adjustment in paid_line.adjustments:
            posting.adjust(ours, adjustment, paid_line.remarks)
    for adjustment in clp.adjustments:
        posting.adjust(pairs[0][1], adjustment, clp.remarks)


class ClaimMatchError(ApplicationError):
    status = 409
    code = "claim-match"
    title = "This claim payment cannot be matched to that claim"

    def __init__(self, detail: str):
        super().__init__(detail, extra={"errors": {"claim": [detail]}})


@transaction.atomic
def remittance_claim_match(*, record: RemittanceClaim, claim: Claim, by=None) -> RemittanceClaim:
    """Post a claim payment left on the worklist to the claim a biller names: its lines must
    pair with the claim's (REF*6R, or code + date + units) and pay what we billed on them.
    Locks the record and the claim; a record matched already is refused."""
    record = (
        RemittanceClaim.objects.select_for_update().select_related("remittance").get(pk=record.pk)
    )
    if record.claim_id is not None:
        raise ClaimMatchError("This claim payment is matched already.")
    claim = Claim.objects.select_for_update(of=("self",)).get(pk=claim.pk)
    if claim.status not in PAYABLE:
        raise ClaimMatchError("The claim was never submitted.")
    remittance = record.remittance
    if remittance.payer_id not in (None, claim.payer_id):
        raise ClaimMatchError("The claim is another payer's.")
    clp = _clp_of(record)
    if clp.is_reversal:
        raise ClaimMatchError("A reversal is matched by the payer's original, not by hand.")
    claims = _claims_read([claim.pk])
    pairs = _pairs(clp, claims[claim.pk])
    if pairs is None:
        raise ClaimMatchError("Its lines do not pair with the claim's lines and amounts.")
    payment = Payment.objects.filter(remittance=remittance).first()
    posting = _Posting(remittance, payment, by, timezone.localdate())
    posting.payer_owes = _payer_balances(claims.values())
    _post_claim(posting, clp, pairs)
    _entries_insert(posting.entries)
    _credits_apply(posting.entries, by)
    _claim_statuses(claims, {claim.pk: [(clp, pairs)]}, posting)
    RemittanceClaim.objects.filter(pk=record.pk).update(claim=claim)
    record.claim = claim
    return record


def _clp_of(record: RemittanceClaim) -> x12.ClaimPayment:
    """The CLP a worklist record holds: records are written in the file's order, so its rank
    among its remittance's records is its CLP's among the transaction set's."""
    remittance = record.remittance
    rank = list(remittance.claims.order_by("id").values_list("pk", flat=True)).index(record.pk)
    for one in x12.parse_835(remittance.x12):
        if (one.payer_id or one.payer.id, one.trace_number) == (
            remittance.payer_identifier,
            remittance.trace_number,
        ):
            return one.claims[rank]
    raise ClaimMatchError("The remittance's file no longer holds this claim payment.")


def _claim_pk(control_number: str) -> int | None:
    found = CONTROL_NUMBER.match(control_number)
    return int(found.group(1)) if found else None


def _claims_locked(one: x12.Remittance) -> dict[int, _Claim]:
    """The file's claims we know (submitted ones), locked in id order, with their lines."""
    pks = sorted({pk for clp in one.claims if (pk := _claim_pk(clp.claim_id)) is not None})
    if not pks:
        return {}
    with connection.cursor() as cursor:
        # One array parameter, not an IN list of 1,000 (Django prepares each value apart).
        cursor.execute(
            f"SELECT id FROM {Claim._meta.db_table} WHERE id = ANY(%s) "  # noqa: S608
            "AND status = ANY(%s) ORDER BY id FOR UPDATE",
            [pks, sorted(str(status) for status in PAYABLE)],
        )
        locked = [row[0] for row in cursor.fetchall()]
    return _claims_read(locked)


def _claims_read(pks: list[int]) -> dict[int, _Claim]:
    """Claims `pks` with their lines (code, date, units, amount): one query."""
    claims: dict[int, _Claim] = {}
    if not pks:
        return claims
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id, c.patient_id, c.payer_id, c.status, c.status_reason, "  # noqa: S608
            "c.payer_claim_number, l.id, l.charge_id, l.amount, l.units, s.code, "
            f"ch.service_date FROM {Claim._meta.db_table} c "
            f"LEFT JOIN {ClaimLine._meta.db_table} l ON l.claim_id = c.id "
            f"LEFT JOIN {Charge._meta.db_table} ch ON ch.id = l.charge_id "
            f"LEFT JOIN {ServiceCode._meta.db_table} s ON s.id = ch.service_code_id "
            "WHERE c.id = ANY(%s) ORDER BY c.id, l.number, l.id",
            [list(pks)],
        )
        for row in cursor.fetchall():
            claim = claims.get(row[0])
            if claim is None:
                claim = claims[row[0]] = _Claim(*row[:6])
            if row[6] is not None:
                claim.line_list.append(
                    _Line(row[6], claim, row[7], row[8], Decimal(row[9]), row[10], row[11])
                )
    return claims


def _payer_balances(claims: Iterable[_Claim]) -> dict[int, Decimal]:
    """What the payer owes on each charge of `claims` (overpayments aside), one query."""
    charge_ids = [line.charge_id for claim in claims for line in claim.line_list]
    if not charge_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.charge_id, SUM(e.amount) FROM {LedgerEntry._meta.db_table} e "  # noqa: S608
            f"LEFT JOIN {LedgerEntry._meta.db_table} r ON r.id = e.reverses_id "
            "WHERE e.charge_id = ANY(%s) AND e.party = %s "
            "AND e.kind <> %s AND (r.kind IS NULL OR r.kind <> %s) GROUP BY e.charge_id",
            [charge_ids, Party.PAYER, Kind.OVERPAYMENT, Kind.OVERPAYMENT],
        )
        return dict(cursor.fetchall())


def _pairs(clp: x12.ClaimPayment, claim: _Claim) -> list[tuple[x12.ServiceLine, _Line]] | None:
    """The CLP's lines paired with our lines, or None when any line pairs with none of ours
    or pays another amount than we billed on it (the CLP then waits on the worklist)."""
    ours = claim.line_list
    if not clp.lines or not ours:
        return None
    pairs = []
    for paid_line, match in x12.match_lines(clp.lines, ours):
        if match is None or paid_line.charge != match.amount:
            return None
        pairs.append((paid_line, match))
    return pairs


def _reversed_claim_ids(claims: Iterable[_Claim], one: x12.Remittance) -> list[int]:
    known = {claim.pk for claim in claims}
    return sorted(
        {pk for clp in one.claims if clp.is_reversal and (pk := _claim_pk(clp.claim_id)) in known}
    )


def _reverse_claims(
    claim_ids: list[int], remittance: Remittance, by, today: date, posting: _Posting
) -> None:
    """Reverse every entry an earlier remittance posted for these claims (each reversed once:
    `reverses` is one-to-one) and reopen the claims."""
    earlier = LedgerEntry.objects.filter(
        claim_id__in=claim_ids,
        remittance__isnull=False,
        reverses__isnull=True,
        reversed_by__isnull=True,
    ).exclude(remittance=remittance)
    reversals = []
    for entry in earlier:
        reversals.append(
            LedgerEntry(
                patient_id=entry.patient_id,
                party=entry.party,
                payer_id=entry.payer_id,
                charge_id=entry.charge_id,
                claim_id=entry.claim_id,
                claim_line_id=entry.claim_line_id,
                remittance=remittance,
                payment_id=entry.payment_id,
                kind=Kind.REVERSAL,
                amount=-entry.amount,
                group_code=entry.group_code,
                reason_code=entry.reason_code,
                remark_codes=entry.remark_codes,
                reverses=entry,
                memo=f"Reversal (835 {remittance.trace_number}) of entry {entry.pk}",
                posted_on=today,
                created_by=by,
            )
        )
        if entry.party == Party.PAYER and entry.kind != Kind.OVERPAYMENT and entry.charge_id:
            posting.payer_owes[entry.charge_id] = (
                posting.payer_owes.get(entry.charge_id, ZERO) - entry.amount
            )
    LedgerEntry.objects.bulk_create(reversals)
    Claim.objects.filter(pk__in=claim_ids).update(
        status=Claim.Status.ACCEPTED,
        status_reason=f"Payment reversed by the payer (835 {remittance.trace_number}).",
        updated_at=timezone.now(),
    )


def _claim_statuses(
    claims: dict[int, _Claim],
    touched: dict[int, list[tuple[x12.ClaimPayment, list[tuple[x12.ServiceLine, _Line]]]]],
    posting: _Posting,
) -> None:
    """Each posted claim's status from the money and reasons (not CLP02): see the module.
    One UPDATE for all of them."""
    now = timezone.now()
    changed = []
    for pk, answers in touched.items():
        claim = claims[pk]
        clp, _ = answers[-1]
        lines = [pair for _, pairs in answers for pair in pairs]
        denied = [
            paid_line
            for paid_line, _ in lines
            if paid_line.paid == ZERO and paid_line.patient_responsibility == ZERO
        ]
        owed = sum((posting.owed(line) for line in claim.line_list), ZERO)
        if len(denied) == len(lines) and clp.patient_responsibility == ZERO:
            claim.status, reason = Claim.Status.DENIED, _reasons(denied)
        elif not denied and owed == ZERO:
            claim.status, reason = Claim.Status.PAID, ""
        else:
            claim.status, reason = Claim.Status.PARTIALLY_PAID, _reasons(denied)
        claim.status_reason = reason[:500]
        claim.payer_claim_number = clp.payer_claim_number[:50] or claim.payer_claim_number
        changed.append(claim)
    if not changed:
        return
    # One UPDATE from arrays: Django's bulk_update builds a CASE per field and row, which
    # took most of the time of a 1,000-claim file.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Claim._meta.db_table} AS c SET status = v.status, "  # noqa: S608
            "status_reason = v.reason, payer_claim_number = v.number, updated_at = %s "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) "
            "AS v(id, status, reason, number) WHERE c.id = v.id",
            [
                now,
                [c.pk for c in changed],
                [c.status for c in changed],
                [c.status_reason for c in changed],
                [c.payer_claim_number for c in changed],
            ],
        )
    for status in dict.fromkeys(c.status for c in changed):
        ids = [c.pk for c in changed if c.status == status]
        claims_status_changed.send(sender=Claim, claim_ids=ids, status=status)


def _reasons(lines: list[x12.ServiceLine]) -> str:
    """The denied lines' reasons in plain English (CARC and RARC)."""
    said = dict.fromkeys(text for line in lines for text in line.explanations())
    return " ".join(said)
