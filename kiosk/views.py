"""The demo council website and the kiosk launcher."""

from django.shortcuts import render

from kiosk.selectors import service_category_list_for_kiosk, service_list_active


def council_home(request):
    """A council's home page as residents meet it, carrying the chat widget."""
    return render(request, "kiosk/council_home.html", {"services": service_list_active()})


def kiosk_home(request):
    """The touch-screen launcher of the services kiosks may open."""
    return render(request, "kiosk/kiosk_home.html", {"categories": service_category_list_for_kiosk()})
