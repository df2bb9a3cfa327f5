"""Reading a command (guardbot/commands/parsing.py), as room admins and server admins type
them."""

from __future__ import annotations

from guardbot.commands.parsing import Command, answer, parse
from guardbot.core.actions import Notice


def test_a_command_is_its_name_its_words_and_the_rest_as_typed() -> None:
    assert parse("!guardbot policy kick 'no guests' please", prefix_required=True) == Command(
        "policy", ("kick", "no guests", "please"), "kick 'no guests' please"
    )
    assert parse("  !guardbot   STATUS ", prefix_required=True) == Command("status", (), "")


def test_the_prefix_is_needed_in_rooms_and_optional_in_the_management_room() -> None:
    assert parse("status", prefix_required=True) is None
    assert parse("hello everyone", prefix_required=True) is None
    assert parse("status", prefix_required=False) == Command("status", (), "")
    assert parse("!guardbot", prefix_required=True) == Command("help", (), "")


def test_unbalanced_quotes_still_give_words() -> None:
    command = parse("!guardbot policy kick it's ours", prefix_required=True)
    assert command == Command("policy", ("kick", "it's", "ours"), "kick it's ours")


def test_an_answer_is_one_notice_caused_by_the_command() -> None:
    (said,) = answer("!r:example.org", ["Done.", "• one"], "$cmd").actions
    assert isinstance(said, Notice) and said.cause == "$cmd" and said.text == "Done.\n• one"
