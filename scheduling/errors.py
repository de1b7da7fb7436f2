from clinic.errors import ApplicationError


class BookingRefusedError(ApplicationError):
    """A booking rule refused the request; `field` names the input at fault."""

    status = 422
    code = "booking-refused"

    def __init__(self, detail: str, *, code: str, field: str, extra: dict | None = None):
        super().__init__(detail, extra={"errors": {field: [detail]}, **(extra or {})})
        self.code = code
        self.field = field


class RecurrenceRuleError(BookingRefusedError):
    """A recurrence rule that gives no bounded series (invalid, endless, empty, too long or
    too far): bad input, a 400 naming `rrule`, before any booking is tried."""

    status = 400

    def __init__(self, detail: str, *, code: str):
        super().__init__(detail, code=code, field="rrule")


class SlotUnavailableError(ApplicationError):
    status = 409
    code = "slot-unavailable"
    title = "Slot unavailable"


class InvalidTransitionError(ApplicationError):
    status = 409
    code = "invalid-transition"
    title = "Invalid status change"


class LateCancelError(ApplicationError):
    status = 409
    code = "late-cancel-window"
    title = "Too late to change online"


class SeriesConflictError(ApplicationError):
    status = 409
    code = "series-conflict"
    title = "Some occurrences cannot be booked"


class IdempotencyKeyReusedError(ApplicationError):
    status = 422
    code = "idempotency-key-reused"
    title = "Idempotency key reused with a different request"


class OverbookNotAllowedError(ApplicationError):
    status = 403
    code = "overbook-not-allowed"
    title = "Only staff may overbook"


class SmartRequestInvalidError(ApplicationError):
    """A smart-booking request breaks a rule; `errors` names each field at fault."""

    status = 400
    code = "invalid-smart-request"
    title = "Invalid smart-booking request"

    def __init__(self, errors: dict[str, list[str]]):
        detail = " ".join(message for messages in errors.values() for message in messages)
        super().__init__(detail, extra={"errors": errors})
        self.errors = errors
