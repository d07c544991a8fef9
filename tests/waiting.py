"""Waiting for something a real process does (a stack, a container, an agent) without timing it."""

import time


def wait_until(predicate, timeout: float, message: str = "condition", *, interval: float = 0.5):
    """`predicate()`'s first truthy answer, polled every `interval` s; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{message} not reached in {timeout} s (last: {last!r})")
