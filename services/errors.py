"""Domain errors. The HTTP layer turns each into one JSON error shape; the worker logs them."""


class DomainError(Exception):
    status = 400
    title = "Bad Request"

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors


class NotFound(DomainError):
    status = 404
    title = "Not Found"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class Invalid(DomainError):
    """Input that is well-formed but breaks a rule (422), with field-level errors when known."""

    status = 422
    title = "Unprocessable Entity"


class TooManyRequests(DomainError):
    status = 429
    title = "Too Many Requests"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after
