"""Pytest fixtures for the fake upstream (registered with `pytest_plugins`).

- `fake_upstream_server` (session): one `FakeUpstream` for the whole run, accepting any
  non-empty bearer key.
- `fake_upstream` (function): the same server, reset before and after each test. At teardown
  it fails the test if a stream is still held at a gate nobody released, which means the test
  forgot a `release()` or its client never let go of the stream, or if a Gemini response it
  made is not one google-genai's types accept (`gemini_schema.validate_gemini_response`).

Fixtures that own a client talking to the fake should request `fake_upstream` themselves, so
that pytest tears them down (closing the client) before the gate check runs. A test that
leaves a stream held on purpose can say so with `@pytest.mark.fake_upstream_allow_held`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream

# How long a held stream may take to notice that its client went away (EOF arrives within
# milliseconds on loopback; this bound only matters on a badly overloaded machine).
HELD_GATE_GRACE = 2.0

_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fake_upstream_allow_held: the test leaves a fake-upstream stream held at a gate",
    )
    config.addinivalue_line(
        "markers",
        "fake_upstream_any_request: the test sends the fake bodies no adapter would (its own "
        "tests), so they are not checked against the OpenAI spec or google-genai's types",
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


@pytest.fixture(scope="session")
def fake_upstream_server() -> Iterator[FakeUpstream]:
    server = FakeUpstream()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def fake_upstream(
    fake_upstream_server: FakeUpstream, request: pytest.FixtureRequest
) -> Iterator[FakeUpstream]:
    from tests.fakes.gemini_schema import validate_gemini_response

    fake_upstream_server.reset()
    # Every Gemini response the fake makes is one google-genai's types accept.
    fake_upstream_server.check_response = validate_gemini_response
    yield fake_upstream_server
    problems = [
        f"a Gemini response it made is not valid: {p}"
        for p in fake_upstream_server.response_problems
    ]
    call = request.node.stash.get(_CALL_REPORT, None)
    problem = held_gate_problem(
        fake_upstream_server,
        test_failed=call is not None and call.failed,
        allowed=request.node.get_closest_marker("fake_upstream_allow_held") is not None,
    )
    if request.node.get_closest_marker("fake_upstream_any_request") is None:
        problems += request_problems(fake_upstream_server.requests)
    fake_upstream_server.reset()
    fake_upstream_server.check_response = None
    if problem:
        pytest.fail(problem, pytrace=False)
    if problems:
        pytest.fail("fake upstream: " + problems[0], pytrace=False)


def held_gate_problem(
    server: FakeUpstream, *, test_failed: bool, allowed: bool, grace: float = HELD_GATE_GRACE
) -> str | None:
    """What to report when a test ends with a stream still held at an unreleased gate."""
    # A stream stays held only while its client is connected: give clients closed during
    # teardown the moment it takes for the fake to see their EOF.
    held = server.wait_gates_clear(timeout=grace)
    # When the test already failed, a held gate is a symptom of that failure, not news.
    if not held or test_failed or allowed:
        return None
    return (
        f"fake upstream: stream(s) still held at unreleased gate(s) {held} after the test; "
        "release them (fake.release(name)) or close the client that holds the stream"
    )


def request_problems(requests: list[Any]) -> list[str]:
    """What is wrong with the model requests the fake received: every body an adapter sends
    must be one the OpenAI spec (AI/ML API) or google-genai's types (Google, Segmind) accept,
    in every test, not only in the wire tests."""
    from tests.fakes.gemini_schema import validate_recorded

    found = []
    for recorded in requests:
        if recorded.method != "POST" or not isinstance(recorded.json, dict):
            continue
        try:
            validate_recorded(recorded)
        except AssertionError as exc:
            found.append(f"a request to {recorded.path} is not valid: {exc}"[:2000])
    return found
