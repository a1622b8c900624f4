from django.apps import AppConfig


class AgentsConsoleConfig(AppConfig):
    name = "agents_console"
    verbose_name = "Advisor console"
