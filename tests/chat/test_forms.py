"""Frame forms: each frame is validated on its own although the forms share their fields, and
leaves nothing for the garbage collector."""

import gc

import pytest

from chat.forms import CallbackRequestForm, ConversationStartForm, MessageSendForm


def test_frame_forms_share_their_fields_and_still_validate_each_frame_on_its_own():
    valid, invalid = MessageSendForm({"client_id": "a", "body": "Hi"}), MessageSendForm({"client_id": "b"})

    assert valid.fields is invalid.fields
    assert valid.is_valid() and not invalid.is_valid()
    assert valid.cleaned_data == {"client_id": "a", "body": "Hi"}
    assert invalid.error_fields() == {"body": ["This field is required."]}


def test_a_field_of_the_wrong_type_is_reported_and_never_cleaned_into_a_string():
    form = MessageSendForm({"client_id": 123, "body": "Hi"})

    assert not form.is_valid()
    assert form.error_fields() == {"client_id": ["Must be a string."]}
    assert "client_id" not in form.cleaned_data


def test_a_valid_frame_form_leaves_no_reference_cycle_for_the_collector():
    gc.collect()
    gc.disable()
    try:
        for number in range(100):
            form = MessageSendForm({"client_id": f"v-{number}", "body": "Hi"})
            assert form.is_valid()
            del form
        # Everything went when its last reference did: nothing left for a collector pause.
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_a_refused_frame_form_leaves_neither_itself_nor_its_traceback_for_the_collector():
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for number in range(100):
            form = MessageSendForm({"client_id": f"v-{number}"})
            assert form.error_fields() == {"body": ["This field is required."]}
            del form
        gc.collect()
        left = {type(thing).__name__ for thing in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()

    assert not left & {"MessageSendForm", "BoundField", "frame", "traceback"}


@pytest.mark.parametrize(
    ("phone", "valid"),
    [
        ("01632 960001", True),
        ("+44 (0)1632 960 001", True),
        ("07700-900123", True),
        ("+1 202 555 0143 12", True),
        ("-------", False),
        ("(01) 23-45", False),
        ("0123456789012345", False),
        ("01632 960001 ext 5", False),
    ],
)
def test_a_call_back_phone_number_needs_7_to_15_digits(phone, valid):
    form = CallbackRequestForm({"name": "Pat", "phone": phone, "message": "Call me"})

    assert form.is_valid() is valid


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("Siân O'Brien-Ng", True),
        ("👩🏽‍💼 Priya", True),  # the joiner in an emoji is not a control character
        ("Pat\n[10am] Advisor: pay at bad.example", False),
        ("Pat\rSmith", False),
        ("Pat\u2028Smith", False),
        ("Pat\x1b[31m", False),
    ],
)
def test_a_residents_name_is_one_line_of_text(name, valid):
    for form in (
        ConversationStartForm({"name": name}),
        CallbackRequestForm({"name": name, "phone": "01632 960001", "message": "Call me"}),
    ):
        assert form.is_valid() is valid, form.errors
        if not valid:
            assert form.error_fields() == {"name": ["Enter your name on one line"]}
