"""The patient's billing pages: their balance and statement (HTML and PDF), for self-pay
visits a superbill (PDF) to claim from their insurer themselves, and paying online: "Pay now"
charges a card through the clinic's processor (billing.processors: a test double in
development, the real adapter behind a setting) and records the payment and its ledger entries
(billing.payments.payment_online), once per form (its key is the payment's idempotency key),
then shows a receipt. Read from the ledger (billing.statements); every charge shown is
recorded in the audit trail as read, every payment as created."""

import hashlib
import uuid
from decimal import Decimal

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from audit import services as audit
from billing import payments, processors, statements
from billing.models import Payment
from practice.selectors import clinic_settings_get

from .access import not_found, patient_required
from .zones import in_viewer_zone


def _audit(request: HttpRequest, charges, label: str) -> None:
    for charge in charges:
        audit.record(request, audit.READ, charge, label=label)
    if not charges:  # the balance itself was read
        audit.record(request, audit.READ, request.patient, label=label)


@require_GET
@patient_required
@in_viewer_zone
def balance(request: HttpRequest) -> HttpResponse:
    """What you owe, what insurance has yet to pay, and each visit's money."""
    statement = statements.statement_build(patient=request.patient)
    self_pay = statements.self_pay_charges(patient=request.patient)
    _audit(request, [line.charge for line in statement.lines], "statement")
    return render(
        request,
        "portal/balance.html",
        {
            "statement": statement,
            "has_self_pay": bool(self_pay),
            "can_pay": statement.you_owe > 0,
            "nav": "billing",
        },
    )


class PayForm(forms.Form):
    amount = forms.DecimalField(
        label=gettext_lazy("Amount"), max_digits=12, decimal_places=2, min_value=Decimal("0.01")
    )
    token = forms.CharField(label=gettext_lazy("Card"), max_length=200)
    key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, owed: Decimal, cards: tuple[tuple[str, str], ...], **kwargs):
        super().__init__(*args, **kwargs)
        self.owed = owed
        if cards:  # a test processor: the page offers its test cards
            self.fields["token"].widget = forms.Select(choices=cards)

    def clean_amount(self) -> Decimal:
        amount = self.cleaned_data["amount"]
        if amount > self.owed:
            raise forms.ValidationError(_("At most what you owe (%(owed)s).") % {"owed": self.owed})
        return amount


def _payment_key(request: HttpRequest) -> str:
    """The payment's idempotency key: the form's own key and the card, so sending the form
    twice pays once, and another card after a decline is a new attempt (the processor answers
    a key it has seen with its first answer)."""
    form_key = request.POST.get("key", "")[:64]
    card = hashlib.sha256(request.POST.get("token", "").encode()).hexdigest()[:16]
    return f"portal-{request.patient.pk}-{form_key}-{card}"


@require_http_methods(["GET", "POST"])
@patient_required
@in_viewer_zone
def pay(request: HttpRequest) -> HttpResponse:
    """Pay what you owe (or part of it) by card. A declined card says why and takes nothing;
    submitting the same form twice pays once."""
    statement = statements.statement_build(patient=request.patient)
    gateway = processors.processor()
    form = PayForm(
        request.POST or None,
        owed=max(statement.you_owe, Decimal(0)),
        cards=gateway.test_cards,
        initial={"amount": statement.you_owe, "key": uuid.uuid4().hex},
    )
    if request.method == "POST":
        key = _payment_key(request)
        done = Payment.objects.filter(idempotency_key=key, patient=request.patient).first()
        if done is not None:  # the same form sent again: its payment, not a second one
            return redirect("portal:receipt", pk=done.pk)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            payment = payments.payment_online(
                patient=request.patient,
                amount=data["amount"],
                token=data["token"],
                currency=clinic_settings_get().currency,
                idempotency_key=_payment_key(request),
                by=request.user,
            )
        except payments.PaymentDeclinedError as declined:
            form.add_error("token", declined.detail)
        except payments.PaymentAmountError as refused:
            form.add_error("amount", refused.detail)
        else:
            audit.record(request, audit.CREATE, payment)
            return redirect("portal:receipt", pk=payment.pk)
    audit.record(request, audit.READ, request.patient, fields=["balance"], label="pay online")
    return render(
        request,
        "portal/pay.html",
        {
            "statement": statement,
            "form": form,
            "test_processor": bool(gateway.test_cards),
            "nav": "billing",
        },
    )


@require_GET
@patient_required
@in_viewer_zone
def receipt(request: HttpRequest, pk: int) -> HttpResponse:
    """The receipt of one of your own online or desk payments: what it paid and what is left."""
    payment = (
        Payment.objects.filter(pk=pk, patient=request.patient, status=Payment.Status.SUCCEEDED)
        .exclude(kind=Payment.Kind.REFUND)
        .first()
    )
    if payment is None:
        return not_found(request, _("No such payment of yours."))
    paid = [
        {"charge": entry.charge, "amount": -entry.amount}
        for entry in payment.ledger.select_related("charge__service_code").order_by("id")
        if entry.charge_id and entry.amount < 0
    ]
    statement = statements.statement_build(patient=request.patient)
    audit.record(request, audit.READ, payment, label="receipt")
    return render(
        request,
        "portal/receipt.html",
        {"payment": payment, "paid": paid, "statement": statement, "nav": "billing"},
    )


@require_GET
@patient_required
def statement_download(request: HttpRequest) -> HttpResponse:
    statement = statements.statement_build(patient=request.patient)
    _audit(request, [line.charge for line in statement.lines], "statement PDF")
    content = statements.statement_pdf(statement, clinic_name=request.tenant.name)
    return _pdf(content, f"statement-{statement.as_of.isoformat()}.pdf")


@require_GET
@patient_required
def superbill_download(request: HttpRequest) -> HttpResponse:
    charges = statements.self_pay_charges(patient=request.patient)
    if not charges:
        return not_found(request, "You have no self-pay visits to claim.")
    _audit(request, charges, "superbill PDF")
    content = statements.superbill_pdf(
        patient=request.patient, charges=charges, clinic_name=request.tenant.name
    )
    return _pdf(content, "superbill.pdf")


def _pdf(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
