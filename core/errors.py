"""The one error hierarchy: every refusal in every app is one of these, mapped to HTTP once, in api.errors."""


class ApplicationError(Exception):
    """A refusal the user can act on. `code` is stable: clients and tests rely on it."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra or {}


class InvalidInput(ApplicationError):
    status = 400
    code = "invalid"


class NotFound(ApplicationError):
    status = 404
    code = "not_found"


class Conflict(ApplicationError):
    """The request is well formed but the current state forbids it."""

    status = 409
    code = "conflict"
