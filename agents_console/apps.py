from django.apps import AppConfig


class AgentsConsoleConfig(AppConfig):
    name = "agents_console"
    verbose_name = "Advisor console"

    def ready(self) -> None:
        from agents_console.presence import helpers_online
        from chat.availability import register_helper_availability

        # chat asks "is anyone there?" without importing the console (dependencies point down).
        register_helper_availability(lambda: helpers_online())
