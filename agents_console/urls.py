from django.urls import path

from agents_console import views

app_name = "agents_console"

urlpatterns = [
    path("", views.console_home, name="home"),
    path("conversations/<int:conversation_id>/wrap-up/", views.wrap_up, name="wrap_up"),
    path("log/", views.log_help, name="log_help"),
    path("kiosks/", views.kiosk_list, name="kiosk_list"),
    path("kiosks/approve/", views.kiosk_approve, name="kiosk_approve"),
    path("kiosks/<int:device_id>/revoke/", views.kiosk_revoke, name="kiosk_revoke"),
    path("kiosks/<int:device_id>/wipe/", views.kiosk_wipe, name="kiosk_wipe"),
]
