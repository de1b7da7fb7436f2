from clinic.errors import ApplicationError


class OfferClosedError(ApplicationError):
    """The offer was accepted, declined, withdrawn or has expired: nothing to do now."""

    status = 409
    code = "offer-closed"
    title = "Offer no longer open"


class EntryRefusedError(ApplicationError):
    """A waitlist entry breaks a rule; `errors` names the field at fault (422)."""

    status = 422
    code = "waitlist-entry-refused"

    def __init__(self, detail: str, *, field: str):
        super().__init__(detail, extra={"errors": {field: [detail]}})
        self.field = field
