from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from chat.models import CallbackRequest, ClosureDate, Conversation, Message, OpeningHours
from config.clock import hours_text


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["seq", "author_kind", "author_name", "body", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["pk", "channel", "status", "assigned_helper", "created_at", "ended_at"]
    list_filter = ["channel", "status"]
    readonly_fields = [
        "last_seq",
        "created_at",
        "waiting_since",
        "queued_at",
        "assigned_at",
        "ended_at",
        "ended_by",
        "visitor_last_seen_at",
        "visitor_left_at",
    ]
    inlines = [MessageInline]


@admin.register(OpeningHours)
class OpeningHoursAdmin(admin.ModelAdmin):
    list_display = ["weekday", "opens_at", "closes_at", "hours"]
    list_editable = ["opens_at", "closes_at"]

    # Times swapped by mistake show here as "… the next day".
    @admin.display(description=_("as residents read them"))
    def hours(self, obj: OpeningHours) -> str:
        return hours_text(obj.opens_at, obj.closes_at)


@admin.register(ClosureDate)
class ClosureDateAdmin(admin.ModelAdmin):
    list_display = ["date", "reason"]
    date_hierarchy = "date"


@admin.register(CallbackRequest)
class CallbackRequestAdmin(admin.ModelAdmin):
    list_display = ["pk", "name", "status", "service", "created_at", "purged_at"]
    list_filter = ["status"]
    readonly_fields = ["created_at", "done_at", "purged_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        # Past its retention the resident's name, contact details and message are gone:
        # there is nothing left to change, and the emptied required fields could not be saved.
        if obj is not None and obj.purged_at is not None:
            return False
        return super().has_change_permission(request, obj)
