from django.contrib import admin

from kiosk.models import KioskDevice, Service, ServiceCategory


@admin.register(ServiceCategory)
class ServiceCategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "position"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "category", "kiosk_allowed", "is_active"]
    list_filter = ["category", "kiosk_allowed", "is_active"]
    search_fields = ["name", "summary"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(KioskDevice)
class KioskDeviceAdmin(admin.ModelAdmin):
    """Name, location and idle time are edited here; enrolment, revocation and wipes happen on
    the console's Kiosks page, where they take effect on the device at once."""

    list_display = ["name", "location", "status", "idle_timeout_seconds", "last_seen_at"]
    list_filter = ["status"]
    search_fields = ["name", "location"]
    readonly_fields = ["status", "approved_by", "approved_at", "revoked_at", "last_seen_at"]
    fields = ["name", "location", "idle_timeout_seconds", *readonly_fields]

    def has_add_permission(self, request):
        # Kiosks are added by pairing, never by hand: a hand-made one would have no credential.
        return False
