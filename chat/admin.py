from django.contrib import admin

from chat.models import Conversation, Message


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
    readonly_fields = ["last_seq", "created_at", "waiting_since", "assigned_at", "ended_at", "ended_by"]
    inlines = [MessageInline]
