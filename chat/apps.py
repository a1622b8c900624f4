from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Conversations"

    def ready(self) -> None:
        from chat import services
        from kiosk import services as kiosk_services
        from kiosk.models import KioskVisit
        from kiosk.signals import visit_ended

        def end_visit_conversations(sender, *, visit_id: int, **kwargs) -> None:
            services.kiosk_visit_wipe(visit_id=visit_id)

        visit_ended.connect(
            end_visit_conversations, sender=KioskVisit, weak=False, dispatch_uid="chat.kiosk_visit_wipe"
        )
        kiosk_services.register_conversation_handover(services.kiosk_visit_handover)
