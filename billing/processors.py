"""Card processors for online payments: the interface billing's services call, a test double
for development and tests (`FakeProcessor`: the patient picks a test card on the page), and an
adapter for Stripe (`StripeProcessor`: PaymentIntents over its REST API, the card tokenized by
Stripe.js in the browser, the key from `STRIPE_SECRET_KEY`). The setting
`BILLING_PAYMENT_PROCESSOR` (a dotted path) chooses one; the double when unset. The Stripe
adapter is never called by the tests (no network): it is the shape a real processor takes.

A processor is called outside the database transaction that records the payment (a network
call never holds a row lock), with our idempotency key, so a retried request never charges a
card twice at a processor that honours keys.
"""

import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

DEFAULT = "billing.processors.FakeProcessor"


@dataclass(frozen=True)
class ProcessorResult:
    succeeded: bool
    processor_id: str = ""  # the processor's id of the charge or refund
    message: str = ""  # why it failed, in the processor's words


class Processor(Protocol):
    name: str
    # The cards a page offers to pay with when the processor is a test double: (token, label);
    # empty for a real processor, whose page tokenizes the card with the processor's script.
    test_cards: tuple[tuple[str, str], ...]

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ProcessorResult: ...

    def refund(
        self, *, processor_id: str, amount: Decimal, idempotency_key: str
    ) -> ProcessorResult: ...


class FakeProcessor:
    """Succeeds, except for the tokens a test uses to see a decline: `tok_decline` (card
    declined) and `tok_error` (the processor failed). The same idempotency key answers the
    same result."""

    name = "fake"
    test_cards = (
        ("tok_visa", "Test card 4242 4242 4242 4242 (succeeds)"),
        ("tok_decline", "Test card 4000 0000 0000 0002 (declined)"),
    )
    _ids = itertools.count(1)
    _seen: dict[str, ProcessorResult] = {}

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ProcessorResult:
        if idempotency_key in self._seen:
            return self._seen[idempotency_key]
        if token == "tok_decline":
            result = ProcessorResult(False, message="Your card was declined.")
        elif token == "tok_error":
            result = ProcessorResult(False, message="The processor could not be reached.")
        else:
            result = ProcessorResult(True, processor_id=f"fake_ch_{next(self._ids)}")
        self._seen[idempotency_key] = result
        return result

    def refund(
        self, *, processor_id: str, amount: Decimal, idempotency_key: str
    ) -> ProcessorResult:
        if idempotency_key in self._seen:
            return self._seen[idempotency_key]
        result = ProcessorResult(True, processor_id=f"fake_re_{next(self._ids)}")
        self._seen[idempotency_key] = result
        return result


class StripeProcessor:
    """Stripe, through its REST API (no SDK): a charge is a PaymentIntent confirmed at once
    with the card's PaymentMethod id (the `token` Stripe.js made in the patient's browser), a
    refund a Refund of it. Our idempotency key goes as Stripe's `Idempotency-Key`, so a retry
    never charges twice. Amounts in the currency's minor unit (cents)."""

    name = "stripe"
    test_cards: tuple[tuple[str, str], ...] = ()
    api = "https://api.stripe.com/v1"

    def __init__(self) -> None:
        self.key = getattr(settings, "STRIPE_SECRET_KEY", "")

    def _post(self, path: str, data: dict[str, str], idempotency_key: str) -> dict:
        import httpx  # only a clinic that uses Stripe imports it

        response = httpx.post(
            f"{self.api}{path}",
            data=data,
            auth=(self.key, ""),
            headers={"Idempotency-Key": idempotency_key},
            timeout=30,
        )
        return {"status_code": response.status_code, **response.json()}

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ProcessorResult:
        body = self._post(
            "/payment_intents",
            {
                "amount": str(int(amount * 100)),
                "currency": currency.lower(),
                "payment_method": token,
                "confirm": "true",
                "automatic_payment_methods[enabled]": "true",
                "automatic_payment_methods[allow_redirects]": "never",
            },
            idempotency_key,
        )
        if body.get("status") == "succeeded":
            return ProcessorResult(True, processor_id=body["id"])
        message = (body.get("error") or {}).get("message", "The card was not charged.")
        return ProcessorResult(False, message=message)

    def refund(
        self, *, processor_id: str, amount: Decimal, idempotency_key: str
    ) -> ProcessorResult:
        body = self._post(
            "/refunds",
            {"payment_intent": processor_id, "amount": str(int(amount * 100))},
            idempotency_key,
        )
        if body.get("status") in ("succeeded", "pending"):
            return ProcessorResult(True, processor_id=body["id"])
        message = (body.get("error") or {}).get("message", "The refund failed.")
        return ProcessorResult(False, message=message)


def processor() -> Processor:
    """The clinic's processor, from the setting."""
    return import_string(getattr(settings, "BILLING_PAYMENT_PROCESSOR", DEFAULT))()
