"""HTTP endpoints of the chat widget: its configuration and the transcript download.

Both are read by the widget from any allowed council site (CORS, without credentials); the
transcript is reached only with the conversation's secret token, sent in the request body.
"""

import datetime

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from chat import selectors, services
from chat.availability import chat_availability, schedule_around
from chat.error_messages import error_message
from chat.routing import widget_origin_allowed
from config.clock import hours_text
from kiosk.selectors import service_list_active

# Within the days the schedule reads (chat.availability.DAYS_AHEAD).
CLOSURES_SHOWN_DAYS = 14


@never_cache
@require_GET
def widget_config(request):
    origin = request.headers.get("Origin")
    if origin and not widget_origin_allowed(origin):
        # Readable by the page refused, so that the widget there stands down and says why
        # instead of offering a chat whose socket would be refused.
        response = JsonResponse(
            {"code": "origin_not_allowed", "message": error_message("origin_not_allowed")}, status=403
        )
        response["Access-Control-Allow-Origin"] = "*"
        return response
    now = timezone.localtime()
    today = now.date()
    schedule = schedule_around(today)
    availability = chat_availability(now=now, schedule=schedule)
    closures_from = availability.closure or today
    return JsonResponse(
        {
            "available": availability.available,
            "reason": availability.reason,
            "next_open": availability.next_open.isoformat() if availability.next_open else None,
            "opening_hours": [
                {
                    "day": hours.get_weekday_display(),
                    "opens": f"{hours.opens_at:%H:%M}",
                    "closes": f"{hours.closes_at:%H:%M}",
                    "text": hours_text(hours.opens_at, hours.closes_at),
                }
                for hours in schedule.hours
            ],
            # The next two weeks' closures, so a resident is not surprised by a bank holiday, and
            # yesterday's while it keeps tonight closed.
            "closures": [
                {"date": closure.date.isoformat(), "reason": closure.reason}
                for closure in schedule.closures
                if closures_from <= closure.date <= today + datetime.timedelta(days=CLOSURES_SHOWN_DAYS)
            ],
            "time_zone": settings.TIME_ZONE,
            # Who runs the chat, for the privacy notice on another site's page.
            "council_name": settings.COUNCIL_NAME,
            "services": [{"slug": service.slug, "name": service.name} for service in service_list_active()],
            "cobrowse_mask_all_inputs": settings.COBROWSE_MASK_ALL_INPUTS,
            # A resident away this long loses their chat, place in the queue and all.
            "abandoned_minutes": settings.CHAT_ABANDONED_TIMEOUT_MINUTES,
            # A chat nobody answers in this long ends (and offers to leave a message).
            "waiting_minutes": settings.CHAT_WAITING_TIMEOUT_MINUTES,
        }
    )


# No cookie authenticates this request (the token in the body does), so there is no session
# for a cross-site request to ride on; the widget posts it from other council sites.
@csrf_exempt
@never_cache
@require_POST
def transcript(request):
    token = request.POST.get("token", "")
    conversation = (
        selectors.conversation_get_by_token(token_hash=services.token_hash(token)) if 0 < len(token) <= 128 else None
    )
    if conversation is None:
        return JsonResponse(
            {"code": "conversation_not_found", "message": error_message("conversation_not_found")},
            status=404,
        )
    response = HttpResponse(
        selectors.conversation_transcript_text(conversation=conversation), content_type="text/plain; charset=utf-8"
    )
    stamp = timezone.localtime(conversation.created_at).strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="conversation-{stamp}-{conversation.pk}.txt"'
    return response
