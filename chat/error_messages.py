"""Every error a resident's or helper's client can be shown, by stable code.

The codes are part of the websocket protocol (docs/protocol.md); the texts are for people.
"""

from django.utils.translation import gettext_lazy as _

ERRORS = {
    # Frame-level problems, answered by the protocol layer before any service runs.
    "binary_not_supported": _("Send frames as JSON text, not binary."),
    "frame_too_large": _("That frame is too large."),
    "malformed_json": _("That frame is not valid JSON."),
    "invalid_envelope": _('Every frame must be a JSON object with a "type" string and a "data" object.'),
    "unknown_type": _("That frame type is not recognised."),
    "invalid_frame": _("Some fields in that frame are missing or not valid."),
    "rate_limited": _("You are sending too quickly. Wait a moment and try again."),
    # Conversation rules, raised by services.
    "not_joined": _("Start or resume a conversation first."),
    "already_joined": _("This connection is already in a conversation."),
    "conversation_not_found": _("That conversation does not exist or has expired."),
    "conversation_ended": _("This conversation has ended."),
    "conversation_gone": _("Someone else has already taken this conversation."),
    "not_assigned": _("This conversation is not assigned to you."),
    "already_waiting": _("This conversation is already waiting in the queue."),
    "already_assigned": _("That helper already has this conversation."),
    "duplicate_client_id": _("That client id was already used for a different message."),
    "service_not_found": _("That service is not in the catalogue."),
    "forbidden": _("You do not have permission to do that."),
    "helper_not_found": _("That helper does not exist or cannot take conversations."),
    "helper_offline": _(
        "That helper is not online now. Choose someone else, or put the conversation back in the queue."
    ),
    "chat_unavailable": _("Nobody can chat right now. You can leave a message and we will get back to you."),
    "too_many_conversations": _("You have started too many conversations. Please try again later."),
    "conversation_not_ended": _("You can rate the conversation once it has ended."),
    "already_rated": _("You have already rated this conversation. Thank you."),
    "nothing_to_rate": _("There is nothing to rate: no advisor answered this conversation."),
    "contact_required": _("Enter a phone number or an email address so we can get back to you."),
    "callback_not_found": _("That call-back request does not exist."),
    "callback_taken": _("Someone else is dealing with that call-back request, or it is done."),
    "cobrowse_not_found": _("That screen-sharing session does not exist or has ended."),
    "too_many_codes": _("You have asked for too many screen-sharing codes. Please try again later."),
    "already_answered": _("An advisor has joined your chat, so your message was not sent. You can ask them here."),
    "cobrowse_code_invalid": _("That code is not right or has expired. Ask the resident to read it out again."),
    "too_many_code_misses": _(
        "You have typed too many wrong codes in the last hour. Ask another helper to join the resident."
    ),
    "cobrowse_not_requested": _("Your helper has not asked to see your screen, or you have already answered."),
    "cobrowse_not_active": _("Screen sharing is not on."),
    "server_error": _("Something went wrong on our side. Try again."),
    # config.json from a site the council has not listed (CHAT_WIDGET_ORIGINS): for its web team.
    "origin_not_allowed": _("This website is not allowed to use the council's webchat."),
}


def error_message(code: str) -> str:
    return str(ERRORS[code])
