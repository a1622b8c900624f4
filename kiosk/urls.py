from django.urls import include, path

from kiosk import views

app_name = "kiosk"

urlpatterns = [
    path("", views.council_home, name="council_home"),
    path("kiosk/", views.kiosk_home, name="home"),
    path("services/", include("kiosk.sample_services.urls")),
]
