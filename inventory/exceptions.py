"""Inventory refusals. Codes are stable: clients and tests rely on them."""

from core.errors import Conflict, InvalidInput, NotFound


class UnknownProduct(InvalidInput):
    code = "unknown_product"


class UnknownLocation(NotFound):
    code = "unknown_location"


class UnknownVial(NotFound):
    code = "unknown_vial"


class UnknownLot(NotFound):
    code = "unknown_lot"


class LotConflict(Conflict):
    """The lot exists with another expiry date: the carton or the record is wrong."""

    code = "lot_expiry_conflict"


class DuplicateSerial(Conflict):
    """GTIN + serial already received: a suspect (possibly counterfeit or diverted) product."""

    code = "suspect_duplicate"


class NotInStock(Conflict):
    code = "not_in_stock"


class AlreadyDispensed(Conflict):
    code = "already_dispensed"


class NotDispensable(Conflict):
    """The vial must not be used: expired, quarantined, recalled or past its beyond-use date."""

    code = "not_dispensable"


class MoveRefused(Conflict):
    code = "move_refused"


class LotStateConflict(Conflict):
    code = "lot_state_conflict"


class ReasonRequired(InvalidInput):
    code = "reason_required"


class CaseBarcode(InvalidInput):
    """The barcode of a case or pack (packaging indicator 1-8), not of a vial."""

    code = "case_barcode"


class SuspectProduct(Conflict):
    """GTIN and serial of a vial we hold, on another lot or expiry: a suspect product (DSCSA)."""

    code = "suspect_product"
