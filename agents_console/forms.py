"""Forms of the advisor console."""

from django import forms
from django.utils.translation import gettext_lazy as _

from agents_console.models import AssistedTransaction
from kiosk.selectors import service_list_active

BARRIER_CHOICES = [
    ("access", _("Access: no device or connection")),
    ("skills", _("Skills")),
    ("confidence", _("Confidence")),
    ("motivation", _("Motivation")),
]


class WrapUpForm(forms.Form):
    """What was done, for one conversation or a walk-in."""

    services = forms.ModelMultipleChoiceField(
        label=_("Which services did you help with?"),
        queryset=service_list_active(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Select at least one service.")},
    )
    outcome = forms.ChoiceField(
        label=_("What was the outcome?"),
        choices=AssistedTransaction.Outcome.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Select the outcome.")},
    )
    barriers = forms.MultipleChoiceField(
        label=_("Which barriers did you see?"),
        help_text=_("Select all that apply."),
        choices=BARRIER_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    typed_by = forms.ChoiceField(
        label=_("Who typed?"),
        choices=AssistedTransaction.TypedBy.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Select who typed.")},
    )
    can_do_alone_next_time = forms.ChoiceField(
        label=_("Could the resident do this alone next time?"),
        choices=AssistedTransaction.NextTime.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Select whether the resident could do this alone next time.")},
    )
    reference = forms.CharField(
        label=_("Reference number (optional)"),
        help_text=_("The reference the service gave, if any."),
        max_length=64,
        required=False,
    )
    minutes_spent = forms.IntegerField(
        label=_("Time spent, in minutes"),
        min_value=1,
        max_value=600,
        error_messages={"required": _("Enter the time spent in minutes.")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A fresh queryset per form, so a service added in the admin shows without a restart.
        self.fields["services"].queryset = service_list_active()


class WalkInForm(WrapUpForm):
    """The wrap-up questions for help given without a chat."""

    channel = forms.ChoiceField(
        label=_("Where did you help?"),
        choices=[
            (AssistedTransaction.Channel.WALK_IN, AssistedTransaction.Channel.WALK_IN.label),
            (AssistedTransaction.Channel.DROP_IN, AssistedTransaction.Channel.DROP_IN.label),
        ],
        widget=forms.RadioSelect,
        error_messages={"required": _("Select where you helped.")},
    )
    field_order = ["channel"]


class KioskApproveForm(forms.Form):
    pairing_code = forms.CharField(
        label=_("Pairing code"),
        max_length=16,
        help_text=_("The code on the kiosk's screen, for example K7PM-4QXZ."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "class": "govuk-input--width-10"}),
    )
    name = forms.CharField(label=_("Kiosk name"), max_length=80, help_text=_("For example, Reception kiosk 2."))
    location = forms.CharField(
        label=_("Where is it?"),
        max_length=160,
        help_text=_(
            "Shown to helpers and to residents who need someone in person, for example Civic Centre, ground floor."
        ),
    )
