"""The forms of the three sample services, with GOV.UK-style validation messages."""

import datetime
import re
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

MISSED_BIN_REPORT_DAYS = 14

POSTCODE_RE = re.compile(r"^(GIR0AA|[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][ABD-HJLNP-UW-Z]{2})$")
VEHICLE_REGISTRATION_RE = re.compile(r"^[A-Z0-9]{2,8}$")
ACCOUNT_NUMBER_RE = re.compile(r"^[0-9]{8}$")

EMAIL_INVALID = _("Enter an email address in the correct format, like name@example.com")


def full_name_field(**kwargs) -> forms.CharField:
    return forms.CharField(
        label=_("Full name"),
        max_length=120,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
        error_messages={"required": _("Enter your full name")},
        **kwargs,
    )


def address_line_1_field() -> forms.CharField:
    return forms.CharField(
        label=_("Address line 1"),
        max_length=120,
        widget=forms.TextInput(attrs={"autocomplete": "address-line1"}),
        error_messages={"required": _("Enter address line 1, typically the building and street")},
    )


def postcode_field(*, label=None) -> forms.CharField:
    """Normalised by `ServiceForm.clean_postcode`."""
    return forms.CharField(
        label=label or _("Postcode"),
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "postal-code"}),
        error_messages={"required": _("Enter a postcode")},
    )


def email_field(*, label=None, required: bool = True, **kwargs) -> forms.EmailField:
    return forms.EmailField(
        label=label or _("Email address"),
        required=required,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={"required": _("Enter your email address"), "invalid": EMAIL_INVALID},
        **kwargs,
    )


def normalise_postcode(value: str) -> str:
    """A UK postcode in upper case with one space before the inward code, or a ValidationError."""
    compact = re.sub(r"\s+", "", value).upper()
    if not POSTCODE_RE.match(compact):
        raise forms.ValidationError(_("Enter a full UK postcode, like AA1 1AA"), code="invalid")
    return f"{compact[:-3]} {compact[-3:]}"


class GovukDateInput(forms.MultiWidget):
    """Day, month and year boxes, rendered as a GOV.UK date input.

    The day box takes the field's own id, so the error summary's link lands on it.
    """

    template_name = "kiosk/services/date_input.html"
    parts = (("day", _("Day"), 2), ("month", _("Month"), 2), ("year", _("Year"), 4))

    def __init__(self, attrs=None):
        super().__init__({name: forms.TextInput for name, _label, _width in self.parts}, attrs)

    def decompress(self, value):
        if isinstance(value, datetime.date):
            return [value.day, value.month, value.year]
        return [None, None, None]

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        field_id = context["widget"]["attrs"].get("id")
        context["widget"]["has_error"] = (attrs or {}).get("aria-invalid") == "true"
        for subwidget, (part, label, width) in zip(context["widget"]["subwidgets"], self.parts, strict=True):
            subwidget["label"] = label
            subwidget["width"] = width
            if field_id:
                subwidget["attrs"]["id"] = field_id if part == "day" else f"{field_id}_{part}"
        return context

    def id_for_label(self, id_):
        return id_


class GovukDateField(forms.MultiValueField):
    """A real calendar date entered as day, month and year."""

    widget = GovukDateInput
    template_name = "kiosk/services/date_field.html"
    default_error_messages = {
        "required": _("Enter a date"),
        "incomplete": _("The date must include a day, month and year"),
        "invalid": _("The date must be a real date"),
        "year": _("The year must include 4 numbers"),
    }

    def __init__(self, **kwargs):
        parts = (forms.CharField(required=False), forms.CharField(required=False), forms.CharField(required=False))
        kwargs.setdefault("template_name", self.template_name)
        super().__init__(parts, require_all_fields=False, **kwargs)

    def compress(self, data_list):
        if not data_list or not any(data_list):
            return None
        day, month, year = (str(part).strip() for part in data_list)
        if not (day and month and year):
            raise forms.ValidationError(self.error_messages["incomplete"], code="incomplete")
        if not (day.isdigit() and month.isdigit() and year.isdigit()):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if len(year) != 4:
            raise forms.ValidationError(self.error_messages["year"], code="year")
        try:
            return datetime.date(int(year), int(month), int(day))
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


class ServiceForm(forms.Form):
    """A sample service's form; `submission_data` is what a submission stores."""

    excluded_from_submission: tuple[str, ...] = ()

    def clean_postcode(self) -> str:
        return normalise_postcode(self.cleaned_data["postcode"])

    def submission_data(self) -> dict[str, Any]:
        """The cleaned data as JSON-safe values (dates as ISO 8601)."""
        data = {}
        for name, value in self.cleaned_data.items():
            if name in self.excluded_from_submission:
                continue
            data[name] = value.isoformat() if isinstance(value, datetime.date) else value
        return data


class MissedBinForm(ServiceForm):
    """Report a bin the crew did not empty on its collection day."""

    report_days = MISSED_BIN_REPORT_DAYS

    BIN_CHOICES = [
        ("general", _("General waste")),
        ("recycling", _("Recycling")),
        ("garden", _("Garden waste")),
        ("food", _("Food waste")),
    ]

    bin_type = forms.ChoiceField(
        label=_("Which bin was missed?"),
        choices=BIN_CHOICES,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Select which bin was missed"),
            "invalid_choice": _("Select which bin was missed"),
        },
    )
    address_line_1 = address_line_1_field()
    town = forms.CharField(
        label=_("Town or city (optional)"),
        max_length=80,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "address-level2"}),
    )
    postcode = postcode_field()
    missed_on = GovukDateField(
        label=_("When was the bin due to be collected?"),
        error_messages={"required": _("Enter the date of the missed collection")},
    )
    put_out_by_6am = forms.ChoiceField(
        label=_("Was the bin out by 6am on the collection day?"),
        choices=[("yes", _("Yes")), ("no", _("No"))],
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Select yes if the bin was out by 6am on the collection day"),
            "invalid_choice": _("Select yes if the bin was out by 6am on the collection day"),
        },
    )
    email = email_field(
        label=_("Email address (optional)"),
        required=False,
        help_text=_("We will only use this to tell you when the bin has been collected."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        example = timezone.localdate() - datetime.timedelta(days=2)
        self.fields["missed_on"].help_text = _("For example, %(date)s") % {
            "date": f"{example.day} {example.month} {example.year}"
        }

    def clean_missed_on(self) -> datetime.date:
        missed_on = self.cleaned_data["missed_on"]
        today = timezone.localdate()
        if missed_on > today:
            raise forms.ValidationError(_("The date of the missed collection must be today or in the past"))
        earliest = today - datetime.timedelta(days=MISSED_BIN_REPORT_DAYS)
        if missed_on < earliest:
            raise forms.ValidationError(
                _(
                    "We can only take reports of collections missed in the last %(days)s days. "
                    "The date must be on or after %(date)s"
                )
                % {"days": MISSED_BIN_REPORT_DAYS, "date": date_format(earliest, "j F Y")}
            )
        return missed_on

    def clean_put_out_by_6am(self) -> bool:
        if self.cleaned_data["put_out_by_6am"] != "yes":
            raise forms.ValidationError(
                _(
                    "Our crews collect only bins that are out by 6am on the collection day, "
                    "so we cannot return for this one. Put it out by 6am on your next collection day"
                ),
                code="too_late",
            )
        return True


class ParkingPermitForm(ServiceForm):
    """Apply for a permit to park in the resident's own zone."""

    PERMIT_LENGTH_CHOICES = [("3", _("3 months")), ("12", _("12 months"))]

    full_name = full_name_field()
    address_line_1 = address_line_1_field()
    postcode = postcode_field()
    vehicle_registration = forms.CharField(
        label=_("Vehicle registration number"),
        help_text=_("For example, AB12 CDE"),
        max_length=16,
        error_messages={"required": _("Enter the vehicle registration number")},
    )
    vehicle_make = forms.CharField(
        label=_("Vehicle make"),
        help_text=_("For example, Ford or Toyota"),
        max_length=60,
        error_messages={"required": _("Enter the vehicle make")},
    )
    permit_length = forms.ChoiceField(
        label=_("How long do you want the permit for?"),
        choices=PERMIT_LENGTH_CHOICES,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Select how long you want the permit for"),
            "invalid_choice": _("Select how long you want the permit for"),
        },
    )
    email = email_field(help_text=_("We will send the permit and your receipt to this address."))
    card_number = forms.CharField(
        label=_("Payment card number"),
        help_text=_("A permit costs £25 for 3 months or £80 for 12 months. We keep only the last 4 digits."),
        max_length=23,
        # cc-number: browsers offer saved cards, and co-browsing never shows its value.
        widget=forms.TextInput(attrs={"autocomplete": "cc-number", "inputmode": "numeric", "spellcheck": "false"}),
        error_messages={"required": _("Enter the long number on the front of your card")},
    )

    def clean_card_number(self) -> str:
        """Check the number (Luhn) and keep only its last four digits: the demo takes no payment
        and the full number is never stored."""
        digits = re.sub(r"[\s-]+", "", self.cleaned_data["card_number"])
        if not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_valid(digits):
            raise forms.ValidationError(_("Enter a valid card number, like 4111 1111 1111 1111"), code="invalid")
        return f"ending {digits[-4:]}"

    def clean_vehicle_registration(self) -> str:
        registration = re.sub(r"\s+", "", self.cleaned_data["vehicle_registration"]).upper()
        if not VEHICLE_REGISTRATION_RE.match(registration):
            raise forms.ValidationError(
                _("Enter a vehicle registration number of 2 to 8 letters and numbers, like AB12 CDE"),
                code="invalid",
            )
        return registration


class CouncilTaxEbillingForm(ServiceForm):
    """Sign up to get Council Tax bills by email instead of post."""

    excluded_from_submission = ("confirm_email",)

    account_number = forms.CharField(
        label=_("Council Tax account number"),
        help_text=_("This is 8 numbers. You can find it at the top of your last bill."),
        max_length=16,
        # data-private: a helper co-browsing with the resident never sees it.
        widget=forms.TextInput(attrs={"inputmode": "numeric", "data-private": ""}),
        error_messages={"required": _("Enter your Council Tax account number")},
    )
    full_name = full_name_field(help_text=_("The name on the Council Tax bill."))
    postcode = postcode_field(label=_("Postcode of the property"))
    email = email_field(help_text=_("We will send your bills to this address."))
    confirm_email = forms.EmailField(
        label=_("Confirm email address"),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={"required": _("Enter your email address again"), "invalid": EMAIL_INVALID},
    )
    consent = forms.BooleanField(
        label=_("I agree to receive my bills by email instead of post"),
        template_name="kiosk/services/checkbox_field.html",
        error_messages={"required": _("Select that you agree to receive your bills by email instead of post")},
    )

    def clean_account_number(self) -> str:
        account_number = re.sub(r"\s+", "", self.cleaned_data["account_number"])
        if not ACCOUNT_NUMBER_RE.match(account_number):
            raise forms.ValidationError(_("Your Council Tax account number must be 8 numbers"), code="invalid")
        return account_number

    def clean(self):
        cleaned_data = super().clean()
        email, confirm_email = cleaned_data.get("email"), cleaned_data.get("confirm_email")
        if email and confirm_email and email.casefold() != confirm_email.casefold():
            self.add_error("confirm_email", _("The email addresses do not match"))
        return cleaned_data
