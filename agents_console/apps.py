from django.apps import AppConfig


class AgentsConsoleConfig(AppConfig):
    name = "agents_console"
    verbose_name = "Advisor console"

    def ready(self) -> None:
        from agents_console import assignment
        from agents_console.presence import helpers_available
        from chat import signals
        from chat.availability import register_helper_availability

        # chat asks "is anyone there?" and announces waiting conversations without importing
        # the console (dependencies point down); the console answers and routes.
        register_helper_availability(lambda: helpers_available())
        signals.conversation_waiting.connect(assignment.on_conversation_waiting, dispatch_uid="route-waiting")
        signals.conversation_released.connect(assignment.on_conversation_released, dispatch_uid="route-released")
