"""The ground floor: the words every app needs.

Owns the error hierarchy (`errors`), the roles and the questions asked of them (`roles`), audited
writes (`history`, which also announces the history rows a bulk write created, for the audit app
to seal), the admin's base pages for audited models (`admin`: read-only, or edited through a
service; history in words, never reverted) and the few rules of presentation every floor shares
(`text`: grams as text, people by name, text safe for a spreadsheet cell), and the busiest reads
compiled to SQL once per process (`compiled`).

May import: Django, its contrib apps and simple_history. Imports no app of this project.
"""
