"""HTTP for people: the server-rendered pages (scan station, recall look-up) whose every action
calls the JSON API, and the demo loader. Pages keep no rules: what they show comes from
selectors and core.roles.

May import: core, labels, inventory, traceability, recalls, audit. Never api.
"""
