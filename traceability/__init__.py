"""The patient side: patients, infusion sessions, dispenses with their checks, brand-switch flags
and adverse reactions (`services`, `selectors`), and the pick that proposes vials for a dose
(`picking`).

May import: core, labels, inventory. Never recalls, audit, api or web.
"""
