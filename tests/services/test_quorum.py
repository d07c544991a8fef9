"""The vote of a site's locations (services.locations.decide): only live locations vote, the quorum of them
turns the site down and keeps it down, and too few live locations hold the state."""

import pytest

from services.locations import decide, held_reason, valid_name

ABC = {"a", "b", "c"}


@pytest.mark.parametrize(
    ("views", "previous", "state"),
    [
        ({"a": "down", "b": "up", "c": "up"}, "up", "up"),  # one location's view never turns it down
        ({"a": "down", "b": "down", "c": "up"}, "up", "down"),
        ({"a": "down", "b": "pending", "c": "up"}, "up", "pending"),  # failing, not yet down at b
        ({"a": "down", "b": "pending", "c": "up"}, "down", "down"),  # still failing at 2: stays down
        ({"a": "down", "b": "up", "c": "up"}, "down", "up"),  # fewer than 2 failing: recovered
        ({"a": "unknown", "b": "unknown", "c": "unknown"}, "unknown", "unknown"),  # nothing seen yet
        ({"a": "up", "b": "unknown", "c": "unknown"}, "unknown", "up"),
        ({"a": "down", "b": "down", "c": "down"}, "down", "down"),
    ],
)
def test_the_quorum_of_live_views_decides(views, previous, state):
    assert decide(views, ABC, quorum=2, previous=previous).state == state


def test_a_dead_location_leaves_the_vote():
    views = {"a": "down", "b": "down", "c": "up"}
    assert decide(views, ABC, 2, "up").state == "down"
    decision = decide(views, {"a", "c"}, 2, "down")  # b stopped beating: a alone sees it down
    assert decision.state == "up" and decision.down == ["a"] and decision.live == 2


def test_too_few_live_locations_hold_the_state():
    views = {"a": "down", "b": "down", "c": "up"}
    decision = decide(views, {"a"}, 2, "up")
    assert decision.state is None and decision.live == 1
    assert "only 1 of its 3 locations are alive and 2 must agree" in held_reason(1, 3, 2)
    assert held_reason(2, 3, 2) is None


def test_quorum_one_and_all():
    views = {"a": "down", "b": "up", "c": "up"}
    assert decide(views, ABC, 1, "up").state == "down"
    assert decide(views, ABC, 3, "up").state == "up"
    assert decide({"a": "down", "b": "down", "c": "down"}, ABC, 3, "up").state == "down"


@pytest.mark.parametrize("name", ["default", "eu-west-1", "a", "tokyo.dc2", "x_1", "9"])
def test_location_names(name):
    assert valid_name(name)


@pytest.mark.parametrize("name", ["", "EU", "-a", "a b", "a/b", "é", "a" * 65, None, 3])
def test_bad_location_names(name):
    assert not valid_name(name)
