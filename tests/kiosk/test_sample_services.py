"""The three sample council services: GOV.UK forms, validation, and a reference on completion."""

import datetime
import re

import pytest
from django.utils import timezone

from kiosk.models import ServiceSubmission
from kiosk.sample_services import services
from kiosk.sample_services.views import session_key

pytestmark = pytest.mark.django_db

MISSED_BIN = "report-missed-bin"
PARKING = "resident-parking-permit"
EBILLING = "council-tax-ebilling"
SLUGS = [MISSED_BIN, PARKING, EBILLING]
PREFIXES = {MISSED_BIN: "MB", PARKING: "PP", EBILLING: "CT"}
TITLES = {
    MISSED_BIN: "Report a missed bin collection",
    PARKING: "Apply for a resident parking permit",
    EBILLING: "Sign up for Council Tax e-billing",
}


def days_ago(days: int) -> datetime.date:
    return timezone.localdate() - datetime.timedelta(days=days)


def date_fields(day: datetime.date) -> dict[str, str]:
    return {"missed_on_day": str(day.day), "missed_on_month": str(day.month), "missed_on_year": str(day.year)}


def valid_post(slug: str) -> dict[str, str]:
    """A valid answer to each service, written the untidy way residents type."""
    if slug == MISSED_BIN:
        return {
            "bin_type": "recycling",
            "address_line_1": "12 High Street",
            "town": "Millbrook",
            "postcode": "  mb1  2ab ",
            "put_out_by_6am": "yes",
            "email": "resident@example.com",
            **date_fields(days_ago(3)),
        }
    if slug == PARKING:
        return {
            "full_name": "Sam Resident",
            "address_line_1": "4 Mill Lane",
            "postcode": "sw1a1aa",
            "vehicle_registration": "ab12 cde",
            "vehicle_make": "Ford",
            "permit_length": "12",
            "email": "sam@example.com",
            "card_number": "4111 1111 1111 1111",
        }
    return {
        "account_number": "1234 5678",
        "full_name": "Sam Resident",
        "postcode": "MB1 2AB",
        "email": "sam@example.com",
        "confirm_email": "Sam@example.com",
        "consent": "true",
    }


EXPECTED_DATA = {
    MISSED_BIN: {
        "bin_type": "recycling",
        "address_line_1": "12 High Street",
        "town": "Millbrook",
        "postcode": "MB1 2AB",
        "put_out_by_6am": True,
        "email": "resident@example.com",
    },
    PARKING: {
        "full_name": "Sam Resident",
        "address_line_1": "4 Mill Lane",
        "postcode": "SW1A 1AA",
        "vehicle_registration": "AB12CDE",
        "vehicle_make": "Ford",
        "permit_length": "12",
        "email": "sam@example.com",
        "card_number": "ending 1111",
    },
    EBILLING: {
        "account_number": "12345678",
        "full_name": "Sam Resident",
        "postcode": "MB1 2AB",
        "email": "sam@example.com",
        "consent": True,
    },
}


def reference_pattern(slug: str) -> re.Pattern:
    return re.compile(rf"^{PREFIXES[slug]}-[A-HJ-NP-Z2-9]{{6}}$")


@pytest.mark.parametrize("slug", SLUGS)
def test_form_page_is_a_govuk_form_with_the_widget_and_no_store(client, slug):
    response = client.get(f"/services/{slug}/")
    html = response.content.decode()

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert f'<h1 class="govuk-heading-xl">{TITLES[slug]}</h1>' in html
    assert f"<title>{TITLES[slug]} –" in html
    assert 'class="govuk-button"' in html
    assert "govuk-error-summary" not in html
    assert 'autocomplete="postal-code"' in html
    assert f'src="/static/chat/js/widget.js" data-dioa-chat data-service="{slug}"' in html


def test_missed_bin_form_renders_govuk_radios_and_a_date_input(client):
    html = client.get(f"/services/{MISSED_BIN}/").content.decode()

    assert html.count('class="govuk-radios__input"') == 6
    assert 'id="id_bin_type_0" name="bin_type" type="radio" value="general"' in html
    assert 'class="govuk-date-input"' in html
    for name in ("missed_on_day", "missed_on_month", "missed_on_year"):
        assert f'name="{name}" type="text" inputmode="numeric"' in html
    assert '<legend class="govuk-fieldset__legend govuk-fieldset__legend--s">When was the bin due' in html


def test_parking_form_keeps_the_vehicle_registration_field_for_cobrowsing(client):
    html = client.get(f"/services/{PARKING}/").content.decode()
    assert 'id="id_vehicle_registration" name="vehicle_registration"' in html
    assert 'autocomplete="name"' in html
    assert 'autocomplete="address-line1"' in html


def test_ebilling_form_renders_the_consent_as_a_govuk_checkbox(client):
    html = client.get(f"/services/{EBILLING}/").content.decode()
    assert 'class="govuk-checkboxes__input" id="id_consent" name="consent" type="checkbox"' in html
    assert "I agree to receive my bills by email instead of post" in html


@pytest.mark.parametrize("slug", SLUGS)
def test_valid_submission_stores_normalised_data_and_shows_the_reference(client, slug):
    response = client.post(f"/services/{slug}/", valid_post(slug))

    assert response.status_code == 302
    assert response["Location"] == f"/services/{slug}/done/"
    submission = ServiceSubmission.objects.get()
    expected = dict(EXPECTED_DATA[slug])
    if slug == MISSED_BIN:
        expected["missed_on"] = days_ago(3).isoformat()
    assert submission.data == expected
    assert submission.service_slug == slug
    assert submission.visit is None
    assert reference_pattern(slug).match(submission.reference)
    assert client.session[session_key(slug)] == submission.reference

    done = client.get(response["Location"])
    html = done.content.decode()
    assert done.status_code == 200
    assert "no-store" in done["Cache-Control"]
    assert 'class="govuk-panel govuk-panel--confirmation"' in html
    assert f"<strong>{submission.reference}</strong>" in html
    assert "What happens next" in html
    assert f'data-dioa-chat data-service="{slug}"' in html


@pytest.mark.parametrize("slug", SLUGS)
def test_done_page_without_the_reference_in_the_session_goes_back_to_the_form(client, slug):
    response = client.get(f"/services/{slug}/done/")
    assert response.status_code == 302
    assert response["Location"] == f"/services/{slug}/"
    assert "no-store" in response["Cache-Control"]


def test_done_page_in_another_browser_or_after_a_flush_shows_no_reference(client):
    from django.test import Client

    client.post(f"/services/{MISSED_BIN}/", valid_post(MISSED_BIN))
    reference = ServiceSubmission.objects.get().reference

    assert Client().get(f"/services/{MISSED_BIN}/done/").status_code == 302
    session = client.session
    session.flush()
    response = client.get(f"/services/{MISSED_BIN}/done/")
    assert response.status_code == 302
    assert reference not in response.content.decode()


def test_the_reference_of_one_service_does_not_open_another_services_done_page(client):
    client.post(f"/services/{MISSED_BIN}/", valid_post(MISSED_BIN))
    assert client.get(f"/services/{PARKING}/done/").status_code == 302


def test_a_missed_collection_exactly_14_days_ago_or_today_is_accepted(client):
    for day in (days_ago(14), days_ago(0)):
        response = client.post(f"/services/{MISSED_BIN}/", {**valid_post(MISSED_BIN), **date_fields(day)})
        assert response.status_code == 302
    assert ServiceSubmission.objects.count() == 2


def test_optional_fields_of_the_missed_bin_report_may_be_blank(client):
    response = client.post(f"/services/{MISSED_BIN}/", {**valid_post(MISSED_BIN), "town": "", "email": ""})
    assert response.status_code == 302
    data = ServiceSubmission.objects.get().data
    assert (data["town"], data["email"]) == ("", "")


INVALID_CASES = [
    # (service, changes to a valid answer, field in error, link anchor, message shown)
    (MISSED_BIN, {"bin_type": ""}, "bin_type", "id_bin_type_0", "Select which bin was missed"),
    (MISSED_BIN, {"bin_type": "glass"}, "bin_type", "id_bin_type_0", "Select which bin was missed"),
    (MISSED_BIN, {"address_line_1": ""}, "address_line_1", "id_address_line_1", "Enter address line 1"),
    (MISSED_BIN, {"postcode": ""}, "postcode", "id_postcode", "Enter a postcode"),
    (MISSED_BIN, {"postcode": "MB1"}, "postcode", "id_postcode", "Enter a full UK postcode"),
    (MISSED_BIN, {"postcode": "12345"}, "postcode", "id_postcode", "Enter a full UK postcode"),
    (
        MISSED_BIN,
        {"missed_on_day": "", "missed_on_month": "", "missed_on_year": ""},
        "missed_on",
        "id_missed_on",
        "Enter the date of the missed collection",
    ),
    (
        MISSED_BIN,
        {"missed_on_month": ""},
        "missed_on",
        "id_missed_on",
        "The date must include a day, month and year",
    ),
    (
        MISSED_BIN,
        {"missed_on_day": "31", "missed_on_month": "2"},
        "missed_on",
        "id_missed_on",
        "The date must be a real date",
    ),
    (MISSED_BIN, {"missed_on_day": "first"}, "missed_on", "id_missed_on", "The date must be a real date"),
    (MISSED_BIN, {"missed_on_year": "26"}, "missed_on", "id_missed_on", "The year must include 4 numbers"),
    (
        MISSED_BIN,
        date_fields(days_ago(-1)),
        "missed_on",
        "id_missed_on",
        "The date of the missed collection must be today or in the past",
    ),
    (
        MISSED_BIN,
        date_fields(days_ago(15)),
        "missed_on",
        "id_missed_on",
        "We can only take reports of collections missed in the last 14 days",
    ),
    (
        MISSED_BIN,
        {"put_out_by_6am": ""},
        "put_out_by_6am",
        "id_put_out_by_6am_0",
        "Select yes if the bin was out by 6am on the collection day",
    ),
    (
        MISSED_BIN,
        {"put_out_by_6am": "no"},
        "put_out_by_6am",
        "id_put_out_by_6am_0",
        "Our crews collect only bins that are out by 6am on the collection day",
    ),
    (MISSED_BIN, {"email": "not-an-email"}, "email", "id_email", "Enter an email address in the correct format"),
    (PARKING, {"full_name": ""}, "full_name", "id_full_name", "Enter your full name"),
    (PARKING, {"postcode": "MB1 2A"}, "postcode", "id_postcode", "Enter a full UK postcode"),
    (
        PARKING,
        {"vehicle_registration": ""},
        "vehicle_registration",
        "id_vehicle_registration",
        "Enter the vehicle registration number",
    ),
    (
        PARKING,
        {"vehicle_registration": "AB12 CDEF9"},
        "vehicle_registration",
        "id_vehicle_registration",
        "Enter a vehicle registration number of 2 to 8 letters and numbers",
    ),
    (
        PARKING,
        {"vehicle_registration": "A"},
        "vehicle_registration",
        "id_vehicle_registration",
        "Enter a vehicle registration number of 2 to 8 letters and numbers",
    ),
    (
        PARKING,
        {"vehicle_registration": "AB-12"},
        "vehicle_registration",
        "id_vehicle_registration",
        "Enter a vehicle registration number of 2 to 8 letters and numbers",
    ),
    (PARKING, {"vehicle_make": ""}, "vehicle_make", "id_vehicle_make", "Enter the vehicle make"),
    (PARKING, {"card_number": "4111 1111 1111 1112"}, "card_number", "id_card_number", "Enter a valid card number"),
    (PARKING, {"card_number": "1234"}, "card_number", "id_card_number", "Enter a valid card number"),
    (
        PARKING,
        {"permit_length": "6"},
        "permit_length",
        "id_permit_length_0",
        "Select how long you want the permit for",
    ),
    (
        PARKING,
        {"permit_length": ""},
        "permit_length",
        "id_permit_length_0",
        "Select how long you want the permit for",
    ),
    (PARKING, {"email": ""}, "email", "id_email", "Enter your email address"),
    (
        EBILLING,
        {"account_number": "1234567"},
        "account_number",
        "id_account_number",
        "Your Council Tax account number must be 8 numbers",
    ),
    (
        EBILLING,
        {"account_number": "1234567X"},
        "account_number",
        "id_account_number",
        "Your Council Tax account number must be 8 numbers",
    ),
    (EBILLING, {"postcode": "not a postcode"}, "postcode", "id_postcode", "Enter a full UK postcode"),
    (
        EBILLING,
        {"confirm_email": "someone.else@example.com"},
        "confirm_email",
        "id_confirm_email",
        "The email addresses do not match",
    ),
    (EBILLING, {"confirm_email": ""}, "confirm_email", "id_confirm_email", "Enter your email address again"),
    (
        EBILLING,
        {"consent": ""},
        "consent",
        "id_consent",
        "Select that you agree to receive your bills by email instead of post",
    ),
]


@pytest.mark.parametrize(("slug", "changes", "field", "anchor", "message"), INVALID_CASES)
def test_each_rule_rejects_bad_input_with_the_error_shown_and_stores_nothing(
    client, slug, changes, field, anchor, message
):
    response = client.post(f"/services/{slug}/", {**valid_post(slug), **changes})
    html = response.content.decode()

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert ServiceSubmission.objects.count() == 0
    assert session_key(slug) not in client.session
    assert f"<title>Error: {TITLES[slug]} –" in html
    assert 'class="govuk-error-summary"' in html
    summary = html[html.index("govuk-error-summary__list") : html.index("</ul>")]
    assert f'<a href="#{anchor}">{message}' in summary
    assert f'id="id_{field}-error" class="govuk-error-message"' in html
    assert html.count("govuk-error-summary__list") == 1
    assert f'data-dioa-chat data-service="{slug}"' in html


def test_a_rejected_form_keeps_what_the_resident_typed(client):
    response = client.post(
        f"/services/{MISSED_BIN}/", {**valid_post(MISSED_BIN), "put_out_by_6am": "no", "missed_on_day": "32"}
    )
    html = response.content.decode()
    assert 'value="12 High Street"' in html
    assert 'name="missed_on_day" type="text" inputmode="numeric" value="32"' in html
    assert 'value="recycling" checked' in html
    assert 'value="no" checked' in html
    assert "govuk-input--error" in html


def test_references_use_the_service_prefix_and_no_ambiguous_characters():
    for slug in SLUGS:
        for _ in range(200):
            reference = services.reference_generate(service_slug=slug)
            assert reference_pattern(slug).match(reference)
            assert not set(reference[3:]) & set("0O1I")


def test_submission_create_retries_when_a_reference_is_taken(monkeypatch):
    ServiceSubmission.objects.create(service_slug=MISSED_BIN, reference="MB-AAAAAA", data={})
    generated = iter(["MB-AAAAAA", "MB-AAAAAA", "MB-BBBBBB"])
    monkeypatch.setattr(services, "reference_generate", lambda *, service_slug: next(generated))

    submission = services.submission_create(service_slug=MISSED_BIN, data={"bin_type": "food"}, visit=None)

    assert submission.reference == "MB-BBBBBB"
    assert ServiceSubmission.objects.count() == 2


def test_submission_create_gives_up_rather_than_loop_forever(monkeypatch):
    ServiceSubmission.objects.create(service_slug=MISSED_BIN, reference="MB-AAAAAA", data={})
    monkeypatch.setattr(services, "reference_generate", lambda *, service_slug: "MB-AAAAAA")

    with pytest.raises(RuntimeError):
        services.submission_create(service_slug=MISSED_BIN, data={}, visit=None)
    assert ServiceSubmission.objects.count() == 1
