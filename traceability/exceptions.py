"""Refusals of the dispensing workflow. Codes are stable: clients and tests rely on them.

Refusals about the vial itself (recalled, expired, already dispensed, ...) are inventory's
(`inventory.rules.dispense_refusal`); these are about patients, sessions, dispenses and flags.
"""

from core.errors import Conflict, InvalidInput


class DuplicateMrn(Conflict):
    code = "duplicate_mrn"


class WeightUnknown(InvalidInput):
    """A g/kg order needs the patient's weight."""

    code = "weight_unknown"


class InvalidDose(InvalidInput):
    code = "invalid_dose"


class SessionNotOpen(Conflict):
    """Only a scheduled or in-progress session takes dispenses, returns and waste."""

    code = "session_not_open"


class SessionStateConflict(Conflict):
    code = "session_state_conflict"


class SessionHasLiveDispenses(Conflict):
    """A session with vials still dispensed to it is not cancelled: return or waste them first."""

    code = "session_has_live_dispenses"


class NothingDispensed(Conflict):
    code = "nothing_dispensed"


class OpenBrandSwitchFlag(Conflict):
    code = "open_brand_switch_flag"


class DispenseClosed(Conflict):
    """The dispense was already returned to stock or wasted."""

    code = "dispense_closed"


class FlagAlreadyAcknowledged(Conflict):
    code = "flag_already_acknowledged"


class InvalidFlagReason(InvalidInput):
    code = "invalid_reason"


class ReasonTextRequired(InvalidInput):
    code = "reason_text_required"


class NoInfusion(Conflict):
    """A reaction belongs to an infusion that started."""

    code = "no_infusion"


class InsufficientStock(Conflict):
    code = "insufficient_stock"


class Contraindicated(Conflict):
    """A clinical check rules the product out for this patient: refused until a pharmacist
    overrides it for the session and product. The code names the check (contraindicated_<check>)."""

    code = "contraindicated"


class CautionsToAcknowledge(Conflict):
    """Cautions the technician must see and acknowledge before the vial is given."""

    code = "cautions_not_acknowledged"


class DoseExceeded(Conflict):
    """The vial would take the session past its ordered grams by more than the smallest vial."""

    code = "dose_exceeded"


class DoseDiscrepancy(Conflict):
    """The grams given differ from the grams ordered beyond tolerance: say why to complete."""

    code = "dose_discrepancy"


class PatientMismatch(Conflict):
    """The patient identified at the bench is not the session's patient."""

    code = "patient_mismatch"


class OverrideStateConflict(Conflict):
    code = "override_state_conflict"


class LotOutOfUseInSession(Conflict):
    """A vial dispensed to the session belongs to a lot recalled or quarantined since."""

    code = "lot_out_of_use_in_session"


class AdministrationExists(Conflict):
    """A session's infusion is started once; its steps go on the same record."""

    code = "administration_exists"


class AdministrationEnded(Conflict):
    """The infusion was finished or stopped: no rate step, pause or fate goes on it any more."""

    code = "administration_ended"


class AdministrationPaused(Conflict):
    code = "administration_paused"


class AdministrationNotPaused(Conflict):
    code = "administration_not_paused"


class StepOutOfOrder(InvalidInput):
    """A step dated before the step before it (or a start before the vials were dispensed)."""

    code = "step_out_of_order"


class OnsetBeforeStart(InvalidInput):
    """A reaction in an infusion cannot begin before the infusion did."""

    code = "onset_before_start"


class FateContradictsDispense(Conflict):
    """What the nurse says became of a vial disagrees with its dispense (e.g. infused, but
    returned to stock; not opened, but wasted as opened)."""

    code = "fate_contradicts_dispense"


class VialFatesMissing(Conflict):
    code = "vial_fates_missing"


class VialFateConflict(Conflict):
    """A dispense cannot be returned (the vial was infused) or wasted as given (it was not opened)."""

    code = "vial_fate_conflict"


class NotAHomeSupply(Conflict):
    code = "not_a_home_supply"


class HomeVialsUnavailable(Conflict):
    """A home infusion reports more vials of a lot than the supply has unused."""

    code = "home_vials_unavailable"
