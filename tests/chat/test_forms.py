"""Frame forms: each frame is validated on its own although the forms share their fields."""

from chat.forms import MessageSendForm


def test_frame_forms_share_their_fields_and_still_validate_each_frame_on_its_own():
    valid, invalid = MessageSendForm({"client_id": "a", "body": "Hi"}), MessageSendForm({"client_id": "b"})

    assert valid.fields is invalid.fields
    assert valid.is_valid() and not invalid.is_valid()
    assert valid.cleaned_data == {"client_id": "a", "body": "Hi"}
    assert invalid.error_fields() == {"body": ["This field is required."]}
