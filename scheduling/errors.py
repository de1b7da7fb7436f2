from clinic.errors import ApplicationError


class BookingRefusedError(ApplicationError):
    """A booking rule refused the request; `field` names the input at fault."""

    status = 422
    code = "booking-refused"

    def __init__(self, detail: str, *, code: str, field: str, extra: dict | None = None):
        super().__init__(detail, extra={"errors": {field: [detail]}, **(extra or {})})
        self.code = code
        self.field = field


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
