"""The sample services' pages: a form, then a confirmation that shows the reference number."""

from dataclasses import dataclass

from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from kiosk.sample_services import forms, services


def session_key(slug: str) -> str:
    """Where the session keeps the reference of the service's last completed submission."""
    return f"sample_services:{slug}:reference"


@dataclass(frozen=True)
class SampleService:
    slug: str
    url_name: str
    title: Promise
    done_title: Promise
    form_class: type[forms.ServiceForm]

    @property
    def session_key(self) -> str:
        return session_key(self.slug)


SAMPLE_SERVICES = {
    service.slug: service
    for service in (
        SampleService(
            slug="report-missed-bin",
            url_name="report_missed_bin",
            title=_("Report a missed bin collection"),
            done_title=_("Missed bin reported"),
            form_class=forms.MissedBinForm,
        ),
        SampleService(
            slug="resident-parking-permit",
            url_name="resident_parking_permit",
            title=_("Apply for a resident parking permit"),
            done_title=_("Application received"),
            form_class=forms.ParkingPermitForm,
        ),
        SampleService(
            slug="council-tax-ebilling",
            url_name="council_tax_ebilling",
            title=_("Sign up for Council Tax e-billing"),
            done_title=_("You have signed up for e-billing"),
            form_class=forms.CouncilTaxEbillingForm,
        ),
    )
}


def _service(slug: str) -> SampleService:
    try:
        return SAMPLE_SERVICES[slug]
    except KeyError:
        raise Http404 from None


def _template(service: SampleService, page: str) -> str:
    return f"kiosk/services/{service.url_name}{page}.html"


# Personal data is on both pages: no browser or proxy may keep a copy (a kiosk is shared).
@never_cache
def service_form(request, slug: str):
    """The service's form; a valid one is stored and the resident sent to the confirmation."""
    service = _service(slug)
    form = service.form_class(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        submission = services.submission_create(
            service_slug=service.slug,
            data=form.submission_data(),
            visit=getattr(request, "kiosk_visit", None),
        )
        request.session[service.session_key] = submission.reference
        return redirect(f"kiosk:sample_services:{service.url_name}_done")
    return render(request, _template(service, ""), {"service": service, "form": form})


@never_cache
def service_done(request, slug: str):
    """The confirmation with this browser's reference; without one, back to the form."""
    service = _service(slug)
    reference = request.session.get(service.session_key)
    if not reference:
        return redirect(f"kiosk:sample_services:{service.url_name}")
    return render(request, _template(service, "_done"), {"service": service, "reference": reference})
