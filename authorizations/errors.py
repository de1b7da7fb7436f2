from clinic.errors import ApplicationError


class AuthorizationExhaustedError(ApplicationError):
    status = 409
    code = "authorization-exhausted"
    title = "Not enough authorized units"


class AuthorizationWeeklyCapError(ApplicationError):
    status = 409
    code = "authorization-weekly-cap"
    title = "Weekly unit cap reached"


class AuthorizationNotValidError(ApplicationError):
    """The authorization does not cover that date, or is not active."""

    status = 409
    code = "authorization-not-valid"
    title = "Authorization does not cover this visit"


class AuthorizationRequiredError(ApplicationError):
    status = 409
    code = "authorization-required"
    title = "Authorization required"


class ReservationStateError(ApplicationError):
    status = 409
    code = "reservation-state"
    title = "Reservation cannot change this way"


class AuthorizationLineBelowUsageError(ApplicationError):
    status = 409
    code = "authorization-line-below-usage"
    title = "Fewer units than already scheduled or used"


class AuthorizationLineInUseError(ApplicationError):
    status = 409
    code = "authorization-line-in-use"
    title = "The line has units in the ledger"


class AuthorizationRequestDecidedError(ApplicationError):
    status = 409
    code = "authorization-request-decided"
    title = "The request was already decided"
