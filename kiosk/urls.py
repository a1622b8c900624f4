from django.urls import include, path

from kiosk import views

app_name = "kiosk"

urlpatterns = [
    path("", views.council_home, name="council_home"),
    path("kiosk/", views.kiosk_home, name="home"),
    path("kiosk/pairing/status/", views.pairing_status, name="pairing_status"),
    path("kiosk/visit/start/", views.visit_start, name="visit_start"),
    path("kiosk/visit/finish/", views.visit_finish, name="visit_finish"),
    path("kiosk/handoff/", views.handoff_create, name="handoff_create"),
    path("kiosk/handoff/<str:token>/", views.handoff_open, name="handoff_open"),
    path("services/", include("kiosk.sample_services.urls")),
]
