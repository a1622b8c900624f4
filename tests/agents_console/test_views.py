"""The console's pages: who may see them, and the wrap-up that logs an assisted transaction."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from agents_console import selectors
from agents_console.models import AssistedTransaction
from chat import events, services
from kiosk.models import KioskDevice

pytestmark = pytest.mark.django_db


@pytest.fixture
def ended_conversation(advisor, service):
    conversation, _token = services.conversation_start(visitor_name="Pat", service=service)
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    conversation, _ = services.conversation_end(conversation_id=conversation.pk, ended_by="helper", helper=advisor)
    return conversation


def wrap_up_data(service, **overrides):
    data = {
        "services": [service.pk],
        "outcome": "done_with_guidance",
        "barriers": ["confidence", "skills"],
        "typed_by": "resident",
        "can_do_alone_next_time": "more_practice",
        "reference": "MB-123",
        "minutes_spent": "12",
    }
    data.update(overrides)
    return data


def test_console_sends_anonymous_visitors_to_sign_in(client):
    response = client.get(reverse("agents_console:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_console_refuses_an_account_without_a_role(client, resident_account):
    client.force_login(resident_account)
    response = client.get(reverse("agents_console:home"))
    assert response.status_code == 403
    assert "You cannot see this page" in response.content.decode()


@pytest.mark.parametrize("role_fixture", ["advisor", "volunteer", "supervisor"])
def test_console_opens_for_every_role(client, role_fixture, request):
    client.force_login(request.getfixturevalue(role_fixture))
    response = client.get(reverse("agents_console:home"))
    assert response.status_code == 200
    assert 'id="console-config"' in response.content.decode()


def test_console_lists_conversations_waiting_for_wrap_up(client, advisor, ended_conversation):
    client.force_login(advisor)
    response = client.get(reverse("agents_console:home"))
    assert reverse("agents_console:wrap_up", args=[ended_conversation.pk]) in response.content.decode()
    assert 'id="wrap-up-more"' not in response.content.decode()


def test_console_lists_the_newest_conversations_waiting_for_wrap_up_and_counts_the_rest(
    client, advisor, ended_conversation, service, monkeypatch
):
    monkeypatch.setattr(selectors, "AWAITING_WRAP_UP_LISTED", 1)
    newer, _token = services.conversation_start(visitor_name="Kim", service=service)
    services.conversation_assign(conversation_id=newer.pk, helper=advisor)
    services.conversation_end(conversation_id=newer.pk, ended_by="helper", helper=advisor)
    client.force_login(advisor)

    page = client.get(reverse("agents_console:home")).content.decode()

    assert reverse("agents_console:wrap_up", args=[newer.pk]) in page
    assert reverse("agents_console:wrap_up", args=[ended_conversation.pk]) not in page
    assert "1 older conversation is also waiting. It is listed here as you log these." in page


def test_wrap_up_form_is_prefilled_with_the_service(client, advisor, ended_conversation, service):
    client.force_login(advisor)
    response = client.get(reverse("agents_console:wrap_up", args=[ended_conversation.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert f'value="{service.pk}" checked' in page


def test_wrap_up_stores_an_assisted_transaction(client, advisor, ended_conversation, service):
    client.force_login(advisor)
    response = client.post(reverse("agents_console:wrap_up", args=[ended_conversation.pk]), wrap_up_data(service))

    assert response.status_code == 302
    record = AssistedTransaction.objects.get()
    assert record.conversation == ended_conversation
    assert record.helper == advisor
    assert record.channel == "web"
    assert list(record.services.all()) == [service]
    assert record.outcome == "done_with_guidance"
    assert (record.barrier_access, record.barrier_skills, record.barrier_confidence, record.barrier_motivation) == (
        False,
        True,
        True,
        False,
    )
    assert (record.typed_by, record.can_do_alone_next_time, record.reference, record.minutes_spent) == (
        "resident",
        "more_practice",
        "MB-123",
        12,
    )


def test_wrap_up_with_missing_answers_shows_errors_and_stores_nothing(client, advisor, ended_conversation, service):
    client.force_login(advisor)
    response = client.post(
        reverse("agents_console:wrap_up", args=[ended_conversation.pk]),
        wrap_up_data(service, outcome="", services=[], minutes_spent="lots"),
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "There is a problem" in page
    assert "Select the outcome." in page
    assert "Select at least one service." in page
    assert AssistedTransaction.objects.count() == 0


def test_wrap_up_twice_is_refused(client, advisor, ended_conversation, service):
    client.force_login(advisor)
    url = reverse("agents_console:wrap_up", args=[ended_conversation.pk])
    client.post(url, wrap_up_data(service))
    response = client.post(url, wrap_up_data(service))

    assert "already been logged" in response.content.decode()
    assert AssistedTransaction.objects.count() == 1


def test_wrap_up_of_a_conversation_still_open_is_refused(client, advisor, service):
    conversation, _token = services.conversation_start()
    services.conversation_assign(conversation_id=conversation.pk, helper=advisor)
    client.force_login(advisor)
    response = client.post(reverse("agents_console:wrap_up", args=[conversation.pk]), wrap_up_data(service))

    assert "End the conversation before" in response.content.decode()
    assert AssistedTransaction.objects.count() == 0


def test_another_advisor_cannot_wrap_up_my_conversation(client, other_advisor, ended_conversation, service):
    client.force_login(other_advisor)
    response = client.post(reverse("agents_console:wrap_up", args=[ended_conversation.pk]), wrap_up_data(service))

    assert response.status_code == 403
    assert AssistedTransaction.objects.count() == 0


def test_a_supervisor_can_wrap_up_any_conversation(client, supervisor, ended_conversation, service):
    client.force_login(supervisor)
    response = client.post(reverse("agents_console:wrap_up", args=[ended_conversation.pk]), wrap_up_data(service))

    assert response.status_code == 302
    assert AssistedTransaction.objects.get().helper == supervisor


def test_login_page_signs_staff_in(client, advisor):
    response = client.post(reverse("login"), {"username": "alex", "password": "alex-password"})
    assert response.status_code == 302
    assert response["Location"] == reverse("agents_console:home")


def test_login_with_a_wrong_password_shows_an_error_summary(client, advisor):
    response = client.post(reverse("login"), {"username": "alex", "password": "wrong"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "There is a problem" in page
    assert "<title>Error:" in page


def test_the_kiosks_page_says_on_which_day_a_kiosk_was_last_seen(client, supervisor, kiosk_credential):
    """A kiosk silent since an earlier day must not read as seen today."""
    last_week = timezone.localtime() - datetime.timedelta(days=7)
    KioskDevice.objects.update(last_seen_at=last_week)
    client.force_login(supervisor)

    page = client.get(reverse("agents_console:kiosk_list")).content.decode()

    assert f"{last_week:%A} {last_week.day} {last_week:%B} at " in page


@pytest.mark.parametrize("leaves", ["deactivated", "deleted"])
def test_a_helper_leaving_through_the_admin_tells_the_consoles_their_call_backs_are_open(
    admin_client, advisor, broadcasts, django_capture_on_commit_callbacks, leaves
):
    callback = services.callback_request_create(name="Pat", message="Call me", phone="01632 960001")
    services.callback_claim(callback_id=callback.pk, helper=advisor)
    change_url = reverse("admin:auth_user_change", args=[advisor.pk])
    joined = timezone.localtime(advisor.date_joined)

    with django_capture_on_commit_callbacks(execute=True):
        if leaves == "deactivated":
            response = admin_client.post(
                change_url,
                {
                    "username": advisor.username,
                    "first_name": advisor.first_name,
                    "groups": list(advisor.groups.values_list("pk", flat=True)),
                    "date_joined_0": f"{joined:%Y-%m-%d}",
                    "date_joined_1": f"{joined:%H:%M:%S}",
                },
            )
        else:
            response = admin_client.post(reverse("admin:auth_user_delete", args=[advisor.pk]), {"post": "yes"})

    assert response.status_code == 302, response.content.decode()[:2000]
    told = broadcasts.events(events.CALLBACK_CHANGED)
    assert [(c["callback"]["id"], c["callback"]["claimer_left"]) for c in told] == [(callback.pk, True)]
