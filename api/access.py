"""The access log of patient data, as the API records it: who saw which patients, through which route.

Reads are logged here; writes are not, because their history already records who made them. A view
records once it has fetched what it will show (a page, an object, a look-up result), so a refused
request (401, 403, 404, 400) records nothing, and one request costs one INSERT whatever it shows.
"""

from collections.abc import Iterable
from operator import attrgetter

from rest_framework.permissions import SAFE_METHODS

from audit.services import patient_access_record


def record_patient_access(request, patient_ids: Iterable[int | None], *, via: str | None = None) -> None:
    """Log that the request's user saw these patients; `via` defaults to the route's URL name."""
    if via is None:
        match = getattr(request, "resolver_match", None)
        via = (match.url_name if match else None) or request.path
    patient_access_record(user=request.user, patient_ids=patient_ids, via=via, request=request)


class LogsPatientAccess:
    """For generic views whose rows name patients: a GET that lists a page or shows one object
    records who saw which patients, once the page or the object is fetched.

    `patient_id_of` is the attribute path from a row to its patient's id ("pk" for patients).
    """

    patient_id_of = "patient_id"

    def _record(self, rows) -> None:
        if self.request.method in SAFE_METHODS:
            patient_id = attrgetter(self.patient_id_of)
            record_patient_access(self.request, [patient_id(row) for row in rows])

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        if page is not None:
            self._record(page)
        return page

    def get_object(self):
        obj = super().get_object()
        self._record([obj])
        return obj
