"""Refusals of the audit app; codes are stable (clients and tests rely on them)."""

from core.errors import Conflict, InvalidInput, NotFound


class InvalidHistoryFilter(InvalidInput):
    code = "invalid_filter"


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"


class ExportNotFound(NotFound):
    code = "export_not_found"


class ExportNotReady(Conflict):
    code = "export_not_ready"


class ExportFailed(Conflict):
    code = "export_failed"


class NotKnown(NotFound):
    """A filter names a patient, user or vial that does not exist; `suggestions` lists close ones."""

    code = "not_found"


class NothingMatched(NotFound):
    """The filters are valid but no record matches them."""

    code = "nothing_matched"
