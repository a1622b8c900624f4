"""Three sample council online services, shipped so the whole loop runs without outside systems."""

from django.urls import path

from kiosk.sample_services import views

app_name = "sample_services"

urlpatterns = [
    path("report-missed-bin/", views.service_form, {"slug": "report-missed-bin"}, name="report_missed_bin"),
    path("report-missed-bin/done/", views.service_done, {"slug": "report-missed-bin"}, name="report_missed_bin_done"),
    path(
        "resident-parking-permit/",
        views.service_form,
        {"slug": "resident-parking-permit"},
        name="resident_parking_permit",
    ),
    path(
        "resident-parking-permit/done/",
        views.service_done,
        {"slug": "resident-parking-permit"},
        name="resident_parking_permit_done",
    ),
    path("council-tax-ebilling/", views.service_form, {"slug": "council-tax-ebilling"}, name="council_tax_ebilling"),
    path(
        "council-tax-ebilling/done/",
        views.service_done,
        {"slug": "council-tax-ebilling"},
        name="council_tax_ebilling_done",
    ),
]
