from django.urls import path

from web import views

app_name = "web"
urlpatterns = [
    path("scan/", views.scan_station, name="scan"),
    path("recall/", views.recall_lookup, name="recall"),
    path("review/", views.review, name="review"),
    path("infusion/", views.infusion, name="infusion"),
]
