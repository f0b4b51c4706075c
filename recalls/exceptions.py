"""Refusals of the recall workflow. Codes are stable: clients and tests rely on them."""

from core.errors import Conflict, InvalidInput, NotFound


class UnknownLots(InvalidInput):
    """Lot numbers (or ids) that match no lot. Nothing is created; `unknown_lots` lists them."""

    code = "unknown_lots"


class AmbiguousLots(InvalidInput):
    """A lot number carried by lots of several products: name the brand to say which."""

    code = "ambiguous_lots"


class RecallReferenceExists(Conflict):
    code = "recall_reference_exists"


class RecallClosed(Conflict):
    code = "recall_closed"


class NotificationsPending(Conflict):
    code = "notifications_pending"


class NothingToDispose(Conflict):
    code = "nothing_to_dispose"


class LotNotFound(NotFound):
    code = "lot_not_found"
