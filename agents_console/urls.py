from django.urls import path

from agents_console import views

app_name = "agents_console"

urlpatterns = [
    path("", views.console_home, name="home"),
    path("conversations/<int:conversation_id>/wrap-up/", views.wrap_up, name="wrap_up"),
    path("log/", views.log_help, name="log_help"),
]
