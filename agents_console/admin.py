from django.contrib import admin

from agents_console.models import AssistedTransaction


@admin.register(AssistedTransaction)
class AssistedTransactionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "helper", "channel", "outcome", "can_do_alone_next_time", "minutes_spent"]
    list_filter = ["channel", "outcome", "can_do_alone_next_time"]
    date_hierarchy = "created_at"
    raw_id_fields = ["conversation"]
