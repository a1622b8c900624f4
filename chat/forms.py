"""Validation of the `data` object of every client frame, one form per frame type."""

from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from chat.services import MAX_MESSAGE_LENGTH
from kiosk.models import KioskDevice


class SharedFields(dict):
    """A frame form's fields, shared by every instance instead of deep-copied for each one.

    Django copies a form's fields per instance so that one form can change its own (choices,
    widgets); frame forms only clean, and the copy took 40 % of validating a chat message
    (69 µs against 41 µs here), on the event loop that serves every socket.
    """

    def __deepcopy__(self, memo):
        return self


class FrameFormMetaclass(forms.forms.DeclarativeFieldsMetaclass):
    def __new__(mcs, name, bases, attrs):
        new_class = super().__new__(mcs, name, bases, attrs)
        new_class.base_fields = SharedFields(new_class.base_fields)
        return new_class


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


# The fields an error frame repeats from the frame it refuses.
REFERENCE_FIELDS = ("client_id", "conversation_id")


class FrameForm(forms.Form, metaclass=FrameFormMetaclass):
    """A form over a decoded JSON object: values must already have the right JSON type.

    Django's fields would turn a list into its string form; a client that sends the wrong
    type must be told instead.
    """

    def __init__(self, data: dict):
        self.type_errors = {}
        for name, field in self.base_fields.items():
            value = data.get(name)
            if value is None:
                continue
            if isinstance(field, forms.IntegerField):
                ok = isinstance(value, int) and not isinstance(value, bool)
                expected = _("a whole number")
            elif isinstance(field, forms.BooleanField):
                ok = isinstance(value, bool)
                expected = _("true or false")
            elif isinstance(field, forms.CharField):
                ok = isinstance(value, str)
                expected = _("a string")
                # JSON can spell half of a UTF-16 pair ("\ud800"), which no database stores.
                if ok and not _encodable(value):
                    ok, expected = False, _("text without half a character (an unpaired surrogate)")
            else:
                ok = True
            if not ok:
                self.type_errors[name] = [str(_("Must be %(type)s.") % {"type": expected})]
        # The fields of the right type are still cleaned, so a valid one (a message's client
        # id) can be named in the error; a wrong-typed value is never turned into a string.
        # No label suffix: frames are never rendered, and looking it up translated costs a
        # gettext call per frame.
        super().__init__(
            data={name: value for name, value in data.items() if name not in self.type_errors}, label_suffix=""
        )

    def full_clean(self) -> None:
        super().full_clean()
        # Cleaning binds each field to the form and caches it there (form -> bound field ->
        # form), and keeps each refusal with the traceback it was raised in (error -> frame
        # -> form -> error): reference cycles, seven objects for every valid frame, that only
        # the garbage collector frees, in pauses of 30-50 ms at a few hundred frames a second
        # (docs/performance.md). Frames are never rendered and their refusals are answered
        # from the messages alone, so both links go and each form is freed with its frame
        # (a refusal keeps only Django's own ValidationError, which lists itself).
        self._bound_fields_cache.clear()
        for errors in self._errors.values():
            for error in errors.data:
                error.__traceback__ = None

    def is_valid(self) -> bool:
        return super().is_valid() and not self.type_errors

    def refers_to(self) -> dict[str, Any]:
        """The frame's valid `client_id` and `conversation_id`, if it has them: what an error
        names, so the client can mark that message as failed or show it beside that
        conversation. A field that failed is not named."""
        return {name: self.cleaned_data.get(name) for name in REFERENCE_FIELDS}

    def error_fields(self) -> dict[str, list[str]]:
        if self.type_errors:
            return self.type_errors
        return {name: [str(message) for message in messages] for name, messages in self.errors.items()}


# What a resident reads beside a field of the widget's forms, in GOV.UK's words.
EMAIL_ERRORS = {
    "invalid": _("Enter an email address in the correct format, like name@example.com"),
    "max_length": _("Your email address must be %(limit_value)s characters or fewer"),
}
NAME_TOO_LONG = _("Your name must be %(limit_value)s characters or fewer")
# A name is shown on one line (the console, the transcript): a line break or another control
# character in it could only be sent on purpose, to make it read as something else.
one_line = RegexValidator(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", _("Enter your name on one line"), inverse_match=True)
RATING_REQUIRED = _("Select how helpful this chat was")

client_id_characters = RegexValidator(r"^[A-Za-z0-9_.:-]+$", _("Use letters, digits, '-', '_', '.' or ':'."))
client_id_field = forms.CharField(max_length=64, validators=[client_id_characters])


# A client's key for a request it may send again after the answer was lost; a secret of the
# client's (a start's brings back the conversation with a new token), so at least 32
# characters: a random UUID, say.
request_key_field = forms.CharField(min_length=32, max_length=64, required=False, validators=[client_id_characters])


class ConversationStartForm(FrameForm):
    client_id = request_key_field
    name = forms.CharField(
        max_length=80, required=False, validators=[one_line], error_messages={"max_length": NAME_TOO_LONG}
    )
    email = forms.EmailField(max_length=254, required=False, error_messages=EMAIL_ERRORS)
    service = forms.SlugField(max_length=80, required=False)
    # On an enrolled kiosk: the resident asks for a helper to come over instead of chatting.
    in_person = forms.BooleanField(required=False)


class CallbackRequestForm(FrameForm):
    client_id = request_key_field
    name = forms.CharField(
        max_length=80,
        validators=[one_line],
        error_messages={"required": _("Enter your name"), "max_length": NAME_TOO_LONG},
    )
    phone = forms.RegexField(
        # 7 to 15 digits (the longest international number), spaced as people write them.
        regex=r"^\+?(?:[ ()-]*[0-9]){7,15}[ ()-]*$",
        max_length=32,
        required=False,
        error_messages={"invalid": _("Enter a phone number, like 01632 960 001")},
    )
    email = forms.EmailField(max_length=254, required=False, error_messages=EMAIL_ERRORS)
    message = forms.CharField(
        max_length=MAX_MESSAGE_LENGTH,
        error_messages={
            "required": _("Enter your message"),
            "max_length": _("Your message must be %(limit_value)s characters or fewer"),
        },
    )
    service = forms.SlugField(max_length=80, required=False)


class ReadForm(FrameForm):
    seq = forms.IntegerField(min_value=0)


class RateForm(FrameForm):
    rating = forms.IntegerField(min_value=1, max_value=5, error_messages={"required": RATING_REQUIRED})
    comment = forms.CharField(
        max_length=500,
        required=False,
        error_messages={"max_length": _("Your comment must be %(limit_value)s characters or fewer")},
    )


class ConversationResumeForm(FrameForm):
    token = forms.CharField(max_length=128)
    last_seq = forms.IntegerField(min_value=0, required=False)


class MessageSendForm(FrameForm):
    client_id = client_id_field
    body = forms.CharField(max_length=MAX_MESSAGE_LENGTH)


class EmptyForm(FrameForm):
    pass


class KioskHeartbeatForm(FrameForm):
    activity = forms.ChoiceField(choices=KioskDevice.Activity.choices)


class ConversationRefForm(FrameForm):
    conversation_id = forms.IntegerField(min_value=1)


class ConversationOpenForm(ConversationRefForm):
    last_seq = forms.IntegerField(min_value=0, required=False)


class ConversationMessageSendForm(ConversationRefForm, MessageSendForm):
    pass


class ConversationReadForm(ConversationRefForm, ReadForm):
    pass


class CallbackRefForm(FrameForm):
    callback_id = forms.IntegerField(min_value=1)


class CobrowseRefForm(FrameForm):
    session_id = forms.IntegerField(min_value=1)


class CobrowseRespondForm(CobrowseRefForm):
    accept = forms.BooleanField(required=False)

    def clean(self):
        cleaned = super().clean()
        if "accept" not in self.data:
            self.add_error("accept", _("Say true to share the screen or false to decline."))
        return cleaned


class CobrowseEventsForm(CobrowseRefForm):
    """One part of a batch of rrweb events: the batch's JSON text, cut into parts in order."""

    page = forms.RegexField(regex=r"^[A-Za-z0-9_-]{1,64}$", max_length=64)
    batch = forms.IntegerField(min_value=0)
    part = forms.IntegerField(min_value=0, max_value=511)
    parts = forms.IntegerField(min_value=1, max_value=512)
    data = forms.CharField(max_length=15 * 1024, strip=False)

    def clean(self):
        cleaned = super().clean()
        if "part" in cleaned and "parts" in cleaned and cleaned["part"] >= cleaned["parts"]:
            self.add_error("part", _("Must be less than parts."))
        return cleaned


class CobrowseConversationForm(FrameForm):
    conversation_id = forms.IntegerField(min_value=1)


class CobrowseStopForm(CobrowseRefForm):
    conversation_id = forms.IntegerField(min_value=1)


class CobrowseCodeForm(FrameForm):
    code = forms.RegexField(regex=r"^\s*\d{3}\s?\d{3}\s*$", max_length=9)


class CobrowseGuideForm(CobrowseRefForm):
    """The helper's pointer (x, y in the page's CSS pixels), a highlight of a node (rrweb's id
    of it, with an optional short note, and whether to scroll the resident to it), or clear."""

    kind = forms.ChoiceField(choices=[("pointer", "pointer"), ("highlight", "highlight"), ("clear", "clear")])
    x = forms.IntegerField(min_value=0, max_value=100000, required=False)
    y = forms.IntegerField(min_value=0, max_value=1000000, required=False)
    node_id = forms.IntegerField(min_value=1, required=False)
    note = forms.CharField(max_length=200, required=False)
    scroll = forms.BooleanField(required=False)

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind == "pointer" and (cleaned.get("x") is None or cleaned.get("y") is None):
            self.add_error("x", _("A pointer needs x and y."))
        if kind == "highlight" and cleaned.get("node_id") is None:
            self.add_error("node_id", _("A highlight needs the node's id."))
        return cleaned
