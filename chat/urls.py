from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("widget/config.json", views.widget_config, name="widget_config"),
    path("widget/transcript/", views.transcript, name="transcript"),
]
