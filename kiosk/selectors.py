"""Reads of the service catalogue."""

from django.db.models import Prefetch, QuerySet

from kiosk.models import Service, ServiceCategory


def service_list_active() -> QuerySet[Service]:
    return Service.objects.filter(is_active=True).select_related("category")


def service_category_list_for_kiosk() -> QuerySet[ServiceCategory]:
    """Categories holding at least one active kiosk service, each with those services prefetched."""
    kiosk_services = Service.objects.filter(is_active=True, kiosk_allowed=True)
    return (
        ServiceCategory.objects.filter(services__in=kiosk_services)
        .distinct()
        .prefetch_related(Prefetch("services", queryset=kiosk_services, to_attr="kiosk_services"))
    )
