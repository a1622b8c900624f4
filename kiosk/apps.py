from django.apps import AppConfig


class KioskConfig(AppConfig):
    name = "kiosk"
    verbose_name = "Kiosks and service catalogue"
