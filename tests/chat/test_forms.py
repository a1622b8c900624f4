"""Frame forms: each frame is validated on its own although the forms share their fields."""

from chat.forms import MessageSendForm


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
