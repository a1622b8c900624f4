"""Two helpers pressing Accept at the same moment: the row lock lets exactly one win."""

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from chat import services
from chat.models import Conversation

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def accept_together(conversation_id: int, helpers) -> dict[int, str]:
    """Every helper calls conversation_assign at once, each on its own connection."""
    barrier = threading.Barrier(len(helpers))
    results: dict[int, str] = {}

    def accept(helper):
        barrier.wait()
        try:
            services.conversation_assign(conversation_id=conversation_id, helper=helper)
            results[helper.pk] = "won"
        except ValidationError as error:
            results[helper.pk] = error.code
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(helper,)) for helper in helpers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_simultaneous_accepts_resolve_to_one_winner(postgres, advisor, other_advisor):
    for _round in range(10):
        conversation, _token = services.conversation_start()

        results = accept_together(conversation.pk, [advisor, other_advisor])

        assert sorted(results.values()) == ["conversation_gone", "won"]
        winner = next(pk for pk, result in results.items() if result == "won")
        conversation = Conversation.objects.get(pk=conversation.pk)
        assert conversation.assigned_helper_id == winner
        assert conversation.status == "active"
        assert conversation.messages.filter(author_kind="system").count() == 1
