from django.contrib import admin

from agents_console.models import AssistedTransaction, CannedResponse, ConsoleSettings, Guide, HelperProfile


@admin.register(AssistedTransaction)
class AssistedTransactionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "helper", "channel", "outcome", "can_do_alone_next_time", "minutes_spent"]
    list_filter = ["channel", "outcome", "can_do_alone_next_time"]
    date_hierarchy = "created_at"
    raw_id_fields = ["conversation"]


@admin.register(HelperProfile)
class HelperProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "capacity", "status"]
    list_editable = ["capacity"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]


@admin.register(ConsoleSettings)
class ConsoleSettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "routing", "answer_within_seconds", "presence_grace_seconds", "requeue_after_seconds"]

    def has_add_permission(self, request) -> bool:
        return not ConsoleSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    list_display = ["title", "service", "is_active"]
    list_filter = ["service", "is_active"]
    search_fields = ["title", "body"]


@admin.register(Guide)
class GuideAdmin(admin.ModelAdmin):
    list_display = ["title", "service", "is_active"]
    list_filter = ["service", "is_active"]
    search_fields = ["title", "steps"]
