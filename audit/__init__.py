"""The reporting wing: the history export to Excel (streamed, flat memory; a Timeline first),
export jobs and events, the access log of patient data, and the tamper evidence over both (seals
written in each write's transaction, Merkle checkpoints, verify_history, retention). It reads every
domain app's history; no domain app reads it (it hears of new history rows through simple_history's
and core.history's signals).

May import: core, labels, inventory, traceability, recalls. Never api or web.
"""
