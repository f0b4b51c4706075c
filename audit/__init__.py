"""The reporting wing: the history export to Excel (streamed, flat memory), export jobs and
events, and the access log of patient data. It reads every domain app's history; no domain app
reads it.

May import: core, labels, inventory, traceability, recalls. Never api or web.
"""
