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
    list_display = ["name", "location", "last_seen_at"]
    search_fields = ["name", "location"]
