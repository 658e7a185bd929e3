"""The fast result constructors make the same objects as the dataclass constructors."""

from __future__ import annotations

import dataclasses

import pytest

from lettre.results import (
    RecipientResult,
    Reply,
    SendResult,
    new_recipient_result,
    new_send_result,
)


@pytest.mark.parametrize("accepted", [True, False])
def test_new_recipient_result_equals_the_constructor(accepted: bool) -> None:
    reply = Reply(250 if accepted else 550, "2.1.5", ("ok",))
    fast = new_recipient_result("bob@example.com", accepted, reply)
    assert fast == RecipientResult("bob@example.com", accepted, reply)
    assert fast.error is None
    assert hash(fast) == hash(RecipientResult("bob@example.com", accepted, reply))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.accepted = not accepted  # type: ignore[misc]


def test_new_send_result_equals_the_constructor() -> None:
    reply = Reply(250, "2.0.0", ("queued as ABC",))
    recipients = (new_recipient_result("bob@example.com", True, reply),)
    fast = new_send_result(recipients, "<id@example.com>", "ABC", reply)
    slow = SendResult(
        recipients=recipients, message_id="<id@example.com>", transport_id="ABC", reply=reply
    )
    assert fast == slow
    assert repr(fast) == repr(slow)
    assert fast.accepted == ("bob@example.com",)
    assert fast.all_accepted
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.transport_id = "other"  # type: ignore[misc]
