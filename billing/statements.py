"""A patient's statement and superbill, read from the ledger (selectors and their PDFs; nothing
here writes).

The **statement** lists the patient's charges with what insurance paid and wrote off, what
moved to the patient and what they paid, and the patient's account balance
(`ledger.patient_balance`): the statement's "you owe" is that balance, never a stored number.
The **superbill** is for self-pay visits (no payer on the charge): what a patient hands their
insurer to be reimbursed themselves, with the clinic's NPI and tax id, the diagnoses (ICD-10-CM)
and the procedure codes, units and fees of each visit.

Money is written in the clinic's currency and locale (`practice.formats`); the PDFs use the
core font (Latin-1), so a sign it cannot print (€) is written as its ISO code.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from practice import formats
from practice.models import Patient

from .ledger import Balance, patient_balance
from .models import BillingProfile, Charge, EpisodeDiagnosis, LedgerEntry

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class StatementLine:
    charge: Charge
    charged: Decimal
    insurance_paid: Decimal
    written_off: Decimal
    insurance_owes: Decimal
    patient_paid: Decimal
    patient_owes: Decimal


@dataclass(frozen=True)
class Statement:
    patient: Patient
    as_of: date
    lines: tuple[StatementLine, ...]
    credits: Decimal  # money on the account applied to no charge and no fee (negative: a credit)
    balance: Balance
    fees: tuple = ()  # no-show and late-cancel fees (billing.visit_fees), newest first

    @property
    def you_owe(self) -> Decimal:
        return self.balance.patient

    @property
    def insurance_pending(self) -> Decimal:
        return self.balance.payers


def _kind(name: str) -> Q:
    """Entries of kind `name`, a reversal counting as the kind it reverses."""
    return Q(kind=name, reverses__isnull=True) | Q(kind="reversal", reverses__kind=name)


def statement_build(*, patient: Patient, as_of: date | None = None) -> Statement:
    """The patient's charges (but void ones) with their money, newest first, and the balance."""
    sums = (
        LedgerEntry.objects.filter(patient=patient, charge__isnull=False)
        .values("charge_id")
        .annotate(
            insurance_paid=Coalesce(
                -Sum("amount", filter=Q(party="payer") & _kind("payment")), ZERO
            ),
            written_off=Coalesce(
                -Sum("amount", filter=Q(party="payer") & _kind("adjustment")), ZERO
            ),
            insurance_owes=Coalesce(Sum("amount", filter=Q(party="payer")), ZERO),
            patient_paid=Coalesce(
                -Sum("amount", filter=Q(party="patient") & _kind("payment")), ZERO
            ),
            patient_owes=Coalesce(Sum("amount", filter=Q(party="patient")), ZERO),
        )
    )
    money: dict[int, dict] = {row["charge_id"]: dict(row) for row in sums}
    charges = (
        Charge.objects.filter(patient=patient)
        .exclude(status=Charge.Status.VOID)
        .select_related("service_code", "payer", "rendering")
        .order_by("-service_date", "-id")
    )
    lines = []
    for c in charges:
        row = money.get(c.pk, {})
        lines.append(
            StatementLine(
                charge=c,
                charged=c.amount,
                insurance_paid=row.get("insurance_paid", ZERO),
                written_off=row.get("written_off", ZERO),
                insurance_owes=row.get("insurance_owes", ZERO),
                patient_paid=row.get("patient_paid", ZERO),
                patient_owes=row.get("patient_owes", ZERO),
            )
        )
    from .visit_fees import FEE_ENTRIES, fees_paid_from_credit

    credits = (
        LedgerEntry.objects.filter(patient=patient, charge__isnull=True)
        .exclude(FEE_ENTRIES)
        .aggregate(total=Coalesce(Sum("amount"), ZERO))["total"]
    )
    fees, credits = fees_paid_from_credit(patient=patient, credit=credits)
    return Statement(
        fees=tuple(fees),
        patient=patient,
        as_of=as_of or timezone.localdate(),
        lines=tuple(lines),
        credits=credits,
        balance=patient_balance(patient=patient),
    )


def self_pay_charges(*, patient: Patient) -> list[Charge]:
    """The patient's self-pay charges (no payer), oldest first: the superbill's visits."""
    return list(
        Charge.objects.filter(patient=patient, payer__isnull=True)
        .exclude(status=Charge.Status.VOID)
        .select_related("service_code", "rendering", "episode")
        .order_by("service_date", "id")
    )


# --- PDFs ----------------------------------------------------------------------------------------


def _text(value: object) -> str:
    text = "-" if value in (None, "") else str(value)
    return text.replace("€", "EUR ").encode("latin-1", "replace").decode("latin-1")


def _money(amount: Decimal) -> str:
    style = formats.style_active()
    return _text(formats.money_format(amount, currency=style.currency, locale=style.locale))


def _day(value: date) -> str:
    return _text(formats.date_format(value, style="medium"))


def _pdf(title: str) -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_creator("Clinic")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    return pdf


def _line(pdf: FPDF, text: str, *, size: int = 10, bold: bool = False, height: float = 6) -> None:
    pdf.set_font("Helvetica", "B" if bold else "", size)
    pdf.multi_cell(0, height, _text(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _provider(pdf: FPDF, clinic_name: str) -> BillingProfile | None:
    profile = BillingProfile.objects.filter(pk=1).first()
    _line(pdf, (profile.legal_name if profile and profile.legal_name else clinic_name), bold=True)
    if profile:
        address = ", ".join(
            part
            for part in (
                profile.address_line1,
                profile.city,
                f"{profile.state} {profile.postal_code}".strip(),
            )
            if part
        )
        if address:
            _line(pdf, address, size=9, height=5)
    return profile


def statement_pdf(statement: Statement, *, clinic_name: str) -> bytes:
    patient = statement.patient
    pdf = _pdf(f"Statement: {patient.full_name}")
    _provider(pdf, clinic_name)
    pdf.ln(2)
    _line(pdf, f"Statement for {patient.full_name}", size=15, bold=True, height=8)
    _line(pdf, f"As of {_day(statement.as_of)}", size=9, height=5)
    pdf.ln(2)
    _line(pdf, f"You owe: {_money(statement.you_owe)}", size=12, bold=True)
    _line(pdf, f"Waiting on insurance: {_money(statement.insurance_pending)}", size=9, height=5)
    if statement.credits:
        _line(pdf, f"Payments not yet applied to a visit: {_money(-statement.credits)}", size=9)
    pdf.ln(3)
    pdf.set_font("Helvetica", size=8)
    with pdf.table(text_align="LEFT", line_height=4.5) as table:
        heading = table.row()
        for title in ("Date", "Service", "Charged", "Insurance paid", "Written off",
                      "Waiting on insurance", "You paid", "You owe"):  # fmt: skip
            heading.cell(title)
        for line in statement.lines:
            row = table.row()
            row.cell(_day(line.charge.service_date))
            row.cell(_text(f"{line.charge.service_code.code} x {line.charge.units}"))
            for amount in (line.charged, line.insurance_paid, line.written_off,
                           line.insurance_owes, line.patient_paid, line.patient_owes):  # fmt: skip
                row.cell(_money(amount))
    return bytes(pdf.output())


def superbill_pdf(*, patient: Patient, charges: list[Charge], clinic_name: str) -> bytes:
    """The self-pay visits as a superbill: provider, patient, diagnoses, procedures, fees."""
    pdf = _pdf(f"Superbill: {patient.full_name}")
    profile = _provider(pdf, clinic_name)
    if profile:
        _line(pdf, f"NPI {profile.npi or '-'}   Tax id {profile.tax_id or '-'}", size=9, height=5)
    pdf.ln(2)
    _line(pdf, "Superbill (for your insurer)", size=15, bold=True, height=8)
    dob = _day(patient.date_of_birth) if patient.date_of_birth else "-"
    _line(pdf, f"Patient: {patient.full_name}, born {dob}", size=10)
    diagnoses = list(
        EpisodeDiagnosis.objects.filter(episode__in={c.episode_id for c in charges})
        .order_by("episode_id", "rank")
        .values_list("episode_id", "rank", "code")
    )
    codes = {episode: [] for episode, _, _ in diagnoses}  # type: dict[int, list[str]]
    for episode, _rank, code in diagnoses:
        codes[episode].append(code)
    pdf.ln(2)
    pdf.set_font("Helvetica", size=8)
    total = ZERO
    with pdf.table(text_align="LEFT", line_height=4.5) as table:
        heading = table.row()
        for title in ("Date", "Place", "Procedure", "Modifiers", "Units", "Diagnoses (ICD-10-CM)",
                      "Rendering provider (NPI)", "Fee"):  # fmt: skip
            heading.cell(title)
        for charge in charges:
            pointed = codes.get(charge.episode_id, [])
            dx = [pointed[p - 1] for p in charge.diagnosis_pointers if 0 < p <= len(pointed)]
            row = table.row()
            row.cell(_day(charge.service_date))
            row.cell(charge.place_of_service)
            row.cell(charge.service_code.code)
            row.cell(_text(charge.modifiers))
            row.cell(str(charge.units))
            row.cell(_text(", ".join(dx)))
            row.cell(_text(f"{charge.rendering} ({charge.rendering_npi or charge.rendering.npi})"))
            row.cell(_money(charge.amount))
            total += charge.amount
    pdf.ln(2)
    _line(pdf, f"Total charged: {_money(total)}", bold=True)
    return bytes(pdf.output())
