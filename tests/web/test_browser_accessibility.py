"""An automated accessibility check (axe-core, run in the page by axe-playwright-python) of
the chat, its settings, login and sign-up, in light and dark: no serious or critical
violation. What axe cannot judge (reading order, wording) is left to people."""

from __future__ import annotations

import pytest

from tests.conftest import (
    BROWSER_TEST,
    PASSWORD,
    expect,
    log_in,
    open_settings,
    send,
    settings_saved,
)
from tests.fakes.upstream import Call, Reply, Text

try:
    from axe_playwright_python.sync_playwright import Axe
except ImportError:  # pragma: no cover - a dev dependency
    Axe = None

pytestmark = BROWSER_TEST

SCHEMES = ["light", "dark"]
ANSWER = "A **formatted** answer:\n\n- one\n- two\n\n```python\nprint('hi')\n```\n\nAnd $x^2$."


def serious(page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"][:5])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_login_and_sign_up_have_no_serious_violation(page, scheme):
    page.emulate_media(color_scheme=scheme)
    page.goto("/accounts/login/")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert serious(page) == []
    page.goto("/accounts/signup/")
    expect(page.get_by_role("button", name="Create account")).to_be_visible()
    assert serious(page) == []


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_chat_and_its_settings_have_no_serious_violation(page, aimlapi, scheme):
    page.emulate_media(color_scheme=scheme)
    log_in(page)
    assert serious(page) == []
    aimlapi.enqueue(Reply([Text(ANSWER)]))
    send(page, "Show me something formatted")
    done = page.locator("article.msg-assistant:not(.msg-active)")
    expect(done.locator(".msg-meta")).to_be_visible()
    assert serious(page) == []
    open_settings(page)
    assert serious(page) == []
    page.keyboard.press("Control+/")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    assert serious(page) == []
    assert PASSWORD  # the account logged in with the suite's password


@pytest.mark.parametrize("scheme", SCHEMES)
def test_versions_edit_the_model_menu_and_the_confirmation_have_no_serious_violation(
    page, aimlapi, scheme
):
    page.emulate_media(color_scheme=scheme)
    log_in(page)
    aimlapi.enqueue(Reply([Text("One.")]))
    send(page, "Answer twice")
    done = page.locator("article.msg-assistant:not(.msg-active)")
    expect(done.locator(".msg-meta")).to_be_visible()
    aimlapi.enqueue(Reply([Text("Two.")]))
    done.get_by_role("button", name="Regenerate").click()
    expect(done.locator(".version-count")).to_have_text("2 / 2")
    assert serious(page) == []
    done.get_by_label("Regenerate with another model").click()
    expect(done.locator(".regenerate-menu li").first).to_be_visible()
    assert serious(page) == []
    page.keyboard.press("Escape")
    page.locator("article.msg-user").get_by_role("button", name="Edit").click()
    expect(page.get_by_role("textbox", name="Edit message")).to_be_focused()
    assert serious(page) == []
    page.keyboard.press("Escape")
    page.locator("article.msg-user").get_by_role("button", name="Delete turn").click()
    expect(page.get_by_role("dialog", name="Are you sure?")).to_be_visible()
    assert serious(page) == []


@pytest.mark.parametrize("scheme", SCHEMES)
def test_token_probabilities_open_have_no_serious_violation(page, aimlapi, scheme):
    page.emulate_media(color_scheme=scheme)
    log_in(page)
    open_settings(page)
    with settings_saved(page):
        page.get_by_label("Token probabilities").check()
    probs = [(" Hi", -0.2, [(" Hi", -0.2), ("\n", -2.0)]), ("!", -0.01, [])]
    aimlapi.enqueue(Reply([Text(" Hi", logprobs=probs[:1]), Text("!", logprobs=probs[1:])]))
    send(page, "Greet me")
    done = page.locator("article.msg-assistant:not(.msg-active)")
    done.locator("details.msg-logprobs summary").click()
    expect(done.get_by_role("list", name="Tokens")).to_be_visible()
    assert serious(page) == []


@pytest.mark.parametrize("scheme", SCHEMES)
def test_functions_declared_calls_and_results_have_no_serious_violation(page, aimlapi, scheme):
    from tests.web.test_browser_functions import CITY, answer_results, declare

    page.emulate_media(color_scheme=scheme)
    log_in(page)
    open_settings(page)
    declare(page, "get_weather", "The weather in a city", CITY)
    page.get_by_text("Import or export as JSON").click()
    aimlapi.enqueue(
        Reply([Call("get_weather", '{"city": "Bern"}', id="c1")], finish="tool_calls"),
        Reply([Text("Sunny.")]),
    )
    send(page, "Weather in Bern?")
    done = page.locator("article.msg-assistant:not(.msg-active)")
    expect(done.get_by_role("button", name="Send results")).to_be_visible()
    assert serious(page) == []
    answer_results(page, {"get_weather": "sunny"})
    expect(page.locator("article.msg-assistant").last.locator(".msg-body")).to_have_text("Sunny.")
    # The pointer rests where Send results was: off the results, their footer fades out (a
    # fade caught half-way is no colour a person reads).
    page.mouse.move(0, 0)
    results = page.get_by_role("article", name="Function results")
    expect(results.locator(".msg-foot")).to_have_css("opacity", "0")
    assert serious(page) == []


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_usage_keys_and_admin_pages_have_no_serious_violation(page, scheme):
    from django.contrib.auth.models import User

    from chatapp.accounts.models import Membership

    page.emulate_media(color_scheme=scheme)
    log_in(page)
    User.objects.filter(username="alice").update(is_superuser=True, is_staff=True)
    waiting = User.objects.create_user(username="waiting", password=PASSWORD)
    Membership.objects.create(user=waiting, status=Membership.Status.PENDING)
    page.goto("/usage/")
    expect(page.get_by_role("combobox", name="Month")).to_be_visible()
    assert serious(page) == []
    page.goto("/manage/")
    expect(page.get_by_role("button", name="Approve")).to_be_visible()
    assert serious(page) == []
    from chatapp.credentials import services

    alice = User.objects.get(username="alice")
    saved = services.key_save(owner_id=alice.pk, route="gemini", api_key="AIzaSy-axe-key-0001")
    services.key_mark_rejected(
        owner_id=alice.pk,
        route="gemini",
        saved_at=saved.updated_at,
        message="API key not valid.",
        api_key="",
    )
    page.goto("/keys/")
    expect(page.get_by_text("Rejected by Google")).to_be_visible()
    assert serious(page) == []
