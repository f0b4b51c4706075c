"""API routes: each resource module owns its own `urlpatterns`."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api import administrations, fhir, flags, overrides, signals, suspects
from api import coldchain
from api import authorisations

from api import audit, auth, labels as label_routes, catalog, locations, lots, patients, recalls, scan, sessions, stock, vials

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include(auth.urlpatterns)),
    path("", include(catalog.urlpatterns)),
    path("", include(lots.urlpatterns)),
    path("", include(locations.urlpatterns)),
    path("", include(label_routes.urlpatterns)),
    path("", include(vials.urlpatterns)),
    path("", include(scan.urlpatterns)),
    path("", include(stock.urlpatterns)),
    path("", include(patients.urlpatterns)),
    path("", include(sessions.urlpatterns)),
    path("", include(administrations.urlpatterns)),
    path("", include(flags.urlpatterns)),
    path("", include(overrides.urlpatterns)),
    path("", include(authorisations.urlpatterns)),
    path("", include(suspects.urlpatterns)),
    path("", include(recalls.urlpatterns)),
    path("", include(signals.urlpatterns)),
    path("", include(fhir.urlpatterns)),
    path("", include(audit.urlpatterns)),
    path("", include(coldchain.urlpatterns)),
]
