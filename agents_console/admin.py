from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import transaction

from agents_console.models import AssistedTransaction, CannedResponse, ConsoleSettings, Guide, HelperProfile
from chat import selectors, services

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class StaffUserAdmin(UserAdmin):
    """Django's, but the consoles hear when a helper with call-backs in hand leaves
    (deactivated or deleted): those are open to anyone again (`CallbackRequest.claimer_left`)."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            in_hand = selectors.callback_ids_in_hand(helpers=User.objects.filter(pk=obj.pk))
            services.callbacks_announce_again(callback_ids=in_hand)

    def delete_model(self, request, obj):
        self.delete_queryset(request, User.objects.filter(pk=obj.pk))

    @transaction.atomic
    def delete_queryset(self, request, queryset):
        in_hand = selectors.callback_ids_in_hand(helpers=queryset)
        super().delete_queryset(request, queryset)
        services.callbacks_announce_again(callback_ids=in_hand)


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
