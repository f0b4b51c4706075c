"""The ground floor: the words every app needs.

Owns the error hierarchy (`errors`), the roles and the questions asked of them (`roles`), audited
writes (`history`) and the few rules of presentation every floor shares (`text`: grams as text,
text safe for a spreadsheet cell).

May import: Django, its contrib apps and simple_history. Imports no app of this project.
"""
