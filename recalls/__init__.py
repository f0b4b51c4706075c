"""Recalls: recall records and the lots they name, lot look-ups and lookbacks (every vial on a
shelf and every patient who received one), patient notifications, bulk disposal (`services`,
`selectors`) and the Excel lookback (`export`).

May import: core, labels, inventory, traceability. Never audit, api or web.
"""
