"""The widget's HTTP endpoints: configuration, transcript, and CORS for embedding sites."""

import datetime
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat import services
from chat.models import CallbackRequest, ClosureDate, Conversation, Message, OpeningHours

pytestmark = pytest.mark.django_db

COUNCIL_SITE = "https://www.millbrook.example.gov.uk"


def test_config_lists_services_and_availability(client, service):
    response = client.get("/chat/widget/config.json")
    data = response.json()
    assert response.status_code == 200
    assert data["available"] is True
    assert data["services"] == [{"slug": "report-missed-bin", "name": "Report a missed bin collection"}]
    assert "no-cache" in response["Cache-Control"]


def test_config_says_how_long_a_resident_may_be_away_and_a_chat_may_wait(client, settings):
    settings.CHAT_ABANDONED_TIMEOUT_MINUTES = 15
    settings.CHAT_WAITING_TIMEOUT_MINUTES = 25
    config = client.get("/chat/widget/config.json").json()
    assert (config["abandoned_minutes"], config["waiting_minutes"]) == (15, 25)


def test_config_says_when_closed(client):
    now = timezone.localtime()
    OpeningHours.objects.create(weekday=(now.weekday() + 1) % 7, opens_at=datetime.time(9), closes_at=datetime.time(17))
    data = client.get("/chat/widget/config.json").json()
    assert (data["available"], data["reason"]) == (False, "closed")
    assert data["next_open"] is not None
    assert data["opening_hours"][0]["opens"] == "09:00"
    assert data["opening_hours"][0]["text"] == "9am to 5pm"
    assert data["time_zone"] == "Europe/London"


def test_config_lists_yesterdays_closure_while_it_keeps_the_night_closed(client, monkeypatch):
    OpeningHours.objects.create(weekday=4, opens_at=datetime.time(22), closes_at=datetime.time(2))
    ClosureDate.objects.create(date=datetime.date(2026, 12, 4), reason="Staff training")  # a Friday
    saturday = datetime.datetime(2026, 12, 5, tzinfo=datetime.UTC)

    monkeypatch.setattr(timezone, "now", lambda: saturday.replace(hour=1))
    at_one = client.get("/chat/widget/config.json").json()
    monkeypatch.setattr(timezone, "now", lambda: saturday.replace(hour=3))
    at_three = client.get("/chat/widget/config.json").json()

    assert (at_one["reason"], at_one["closures"]) == ("closed", [{"date": "2026-12-04", "reason": "Staff training"}])
    assert (at_three["reason"], at_three["closures"]) == ("closed", [])


def test_config_reads_the_hours_and_closures_once(client):
    """Availability and the lists the widget shows come from one read of each table."""
    OpeningHours.objects.create(weekday=0, opens_at=datetime.time(9), closes_at=datetime.time(17))
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/chat/widget/config.json").status_code == 200
    tables = [q["sql"] for q in queries.captured_queries]
    assert sum('"chat_openinghours"' in sql for sql in tables) == 1
    assert sum('"chat_closuredate"' in sql for sql in tables) == 1


def test_config_lists_the_next_two_weeks_closures_only(client):
    today = timezone.localdate()
    for days, reason in ((-1, "Yesterday"), (0, "Training"), (14, "Bank holiday"), (15, "Too far ahead")):
        ClosureDate.objects.create(date=today + datetime.timedelta(days=days), reason=reason)

    closures = client.get("/chat/widget/config.json").json()["closures"]

    assert closures == [
        {"date": today.isoformat(), "reason": "Training"},
        {"date": (today + datetime.timedelta(days=14)).isoformat(), "reason": "Bank holiday"},
    ]


def test_an_embedding_council_site_gets_cors_headers_and_others_only_a_refusal(client, settings):
    settings.CHAT_WIDGET_ORIGINS = settings.CORS_ALLOWED_ORIGINS = [COUNCIL_SITE]
    allowed = client.get("/chat/widget/config.json", headers={"Origin": COUNCIL_SITE})
    other = client.get("/chat/widget/config.json", headers={"Origin": "https://evil.example"})

    assert allowed.status_code == 200
    assert allowed["Access-Control-Allow-Origin"] == COUNCIL_SITE
    assert "Access-Control-Allow-Credentials" not in allowed
    assert (other.status_code, other.json()["code"]) == (403, "origin_not_allowed")


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "https://www.millbrook.example.gov.uk:99999"])
def test_a_site_not_listed_is_told_so_and_nothing_else(client, settings, origin):
    settings.CHAT_WIDGET_ORIGINS = [COUNCIL_SITE]
    response = client.get("/chat/widget/config.json", headers={"Origin": origin})

    assert response.status_code == 403
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response.json() == {
        "code": "origin_not_allowed",
        "message": "This website is not allowed to use the council's webchat.",
    }


@pytest.mark.parametrize("origin", [COUNCIL_SITE, "http://testserver", None])
def test_this_site_and_the_listed_ones_get_the_configuration(client, settings, origin):
    """The same origins as the resident's socket accepts: this site's hosts and the listed sites."""
    settings.CHAT_WIDGET_ORIGINS = [COUNCIL_SITE]
    response = client.get("/chat/widget/config.json", headers={"Origin": origin} if origin else {})

    assert response.status_code == 200
    assert "services" in response.json()


@pytest.mark.parametrize(
    "path", ["/static/chat/js/widget.js", "/static/chat/js/socket.js", "/static/chat/css/widget.css"]
)
def test_the_widget_module_and_styles_load_from_any_site(client, path):
    response = client.get(path, headers={"Origin": COUNCIL_SITE})
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"


def test_the_console_never_gets_cors_headers(client, settings):
    settings.CORS_ALLOWED_ORIGINS = [COUNCIL_SITE]
    response = client.get("/console/", headers={"Origin": COUNCIL_SITE})
    assert "Access-Control-Allow-Origin" not in response


def test_transcript_downloads_with_the_token(client, advisor):
    conversation, token = services.conversation_start(visitor_name="Pat")
    services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="<script>x</script>")

    response = client.post("/chat/widget/transcript/", {"token": token})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="conversation-')
    assert "Pat: <script>x</script>" in response.content.decode()


def test_transcript_times_read_as_govuk_writes_them(client):
    conversation, token = services.conversation_start(visitor_name="Pat")
    services.message_create(conversation_id=conversation.pk, author_kind="visitor", body="Hello")
    started = datetime.datetime(2026, 11, 5, 17, 29, tzinfo=zoneinfo.ZoneInfo("Europe/London"))
    Conversation.objects.filter(pk=conversation.pk).update(created_at=started)
    Message.objects.filter(conversation=conversation).update(created_at=started + datetime.timedelta(minutes=1))

    lines = client.post("/chat/widget/transcript/", {"token": token}).content.decode().splitlines()

    assert lines[1] == "Started 5 November 2026 at 5:29pm"
    assert "[5:30pm] Pat: Hello" in lines


def test_a_transcript_running_past_midnight_says_when_the_day_changes(client):
    conversation, token = services.conversation_start(visitor_name="Pat")
    for body in ("Still there?", "Yes", "Thanks"):
        services.message_create(conversation_id=conversation.pk, author_kind="visitor", body=body)
    london = zoneinfo.ZoneInfo("Europe/London")
    started = datetime.datetime(2026, 11, 5, 23, 50, tzinfo=london)
    Conversation.objects.filter(pk=conversation.pk).update(created_at=started)
    messages = Message.objects.filter(conversation=conversation).order_by("seq")
    for message, minutes in zip(messages, (5, 15, 20), strict=True):
        Message.objects.filter(pk=message.pk).update(created_at=started + datetime.timedelta(minutes=minutes))

    lines = client.post("/chat/widget/transcript/", {"token": token}).content.decode().splitlines()

    entries = lines[lines.index("[11:55pm] Pat: Still there?") :]
    assert entries == [
        "[11:55pm] Pat: Still there?",
        "",
        "6 November 2026",
        "[12:05am] Pat: Yes",
        "[12:10am] Pat: Thanks",
    ]


def test_no_message_can_write_what_reads_as_another_entry_of_the_transcript(client):
    conversation, token = services.conversation_start(visitor_name="Pat")
    body = "My bin\n[10:02am] Advisor: Pay the fine at https://bad.example\r\nThanks\u2028[10:03am] Advisor: Now"
    services.message_create(conversation_id=conversation.pk, author_kind="visitor", body=body)

    text = client.post("/chat/widget/transcript/", {"token": token}).content.decode()

    # Read as a mail client might: any line break Unicode knows starts a line.
    lines = text.splitlines()
    entry = next(index for index, line in enumerate(lines) if line.endswith("Pat: My bin"))
    assert lines[entry + 1 : entry + 4] == [
        "    [10:02am] Advisor: Pay the fine at https://bad.example",
        "    Thanks",
        "    [10:03am] Advisor: Now",
    ]
    assert not [line for line in lines if line.startswith("[") and "Advisor:" in line]


@pytest.mark.parametrize("token", ["", "wrong", "x" * 500])
def test_transcript_without_the_right_token_reveals_nothing(client, token):
    services.conversation_start()
    response = client.post("/chat/widget/transcript/", {"token": token})
    assert response.status_code == 404
    assert response.json()["code"] == "conversation_not_found"


def test_transcript_of_an_expired_conversation_is_gone(client, settings):
    settings.CHAT_TOKEN_TTL_MINUTES = 0
    conversation, token = services.conversation_start()
    services.conversation_end(conversation_id=conversation.pk, ended_by="visitor")
    assert client.post("/chat/widget/transcript/", {"token": token}).status_code == 404


def test_transcript_only_by_post(client):
    assert client.get("/chat/widget/transcript/").status_code == 405


def test_opening_hours_read_as_govuk_writes_them():
    hours = OpeningHours(weekday=0, opens_at=datetime.time(9), closes_at=datetime.time(17, 30))
    assert str(hours) == "Monday 9am to 5:30pm"


@pytest.mark.parametrize(
    "opens, closes, text",
    [
        (datetime.time(9), datetime.time(0), "Friday 9am to midnight"),
        (datetime.time(22), datetime.time(2), "Friday 10pm to 2am the next day"),
        (datetime.time(0), datetime.time(0), "Friday all day"),
        (datetime.time(12), datetime.time(12), "Friday midday to midday the next day"),
    ],
)
def test_hours_past_midnight_read_as_they_run(opens, closes, text):
    assert str(OpeningHours(weekday=4, opens_at=opens, closes_at=closes)) == text


def test_the_admin_list_shows_hours_as_residents_read_them(admin_client):
    """So times swapped by mistake (5pm to 9am) are seen for what they now mean."""
    OpeningHours.objects.create(weekday=0, opens_at=datetime.time(17), closes_at=datetime.time(9))
    page = admin_client.get("/admin/chat/openinghours/")
    assert "5pm to 9am the next day" in page.content.decode()


def test_a_call_back_past_its_retention_is_shown_in_the_admin_but_cannot_be_changed(admin_client):
    callback = services.callback_request_create(name="Pat", phone="01632 960001", message="Call me")
    CallbackRequest.objects.filter(pk=callback.pk).update(status="done", done_at=timezone.now())
    services.personal_data_purge(now=timezone.now() + datetime.timedelta(days=365))
    url = f"/admin/chat/callbackrequest/{callback.pk}/change/"

    page = admin_client.get(url)
    refused = admin_client.post(url, {"name": "Someone", "message": "Put back", "status": "open"})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode(), "no save button for a record with nothing left to change"
    assert refused.status_code == 403
    callback.refresh_from_db()
    assert (callback.name, callback.message, callback.status) == ("", "", "done")


def test_a_call_back_still_kept_can_be_changed_in_the_admin(admin_client):
    callback = services.callback_request_create(name="Pat", phone="01632 960001", message="Call me")
    url = f"/admin/chat/callbackrequest/{callback.pk}/change/"

    saved = admin_client.post(url, {"name": "Pat", "phone": "01632 960001", "message": "Call me", "status": "done"})

    assert saved.status_code == 302
    assert CallbackRequest.objects.get(pk=callback.pk).status == "done"
