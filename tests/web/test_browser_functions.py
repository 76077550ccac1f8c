"""Browser: function calling as a playground. The person declares functions in the settings
panel ("Add function"), the model calls two at once, the person types both results and
presses "Send results", the model calls again, results again, then a text answer; what the
upstream received each round is checked, and the history survives a reload between rounds.

Synchronisation is by events only: Playwright's `expect` waits for the page, the autosave's
response is awaited, the fake upstream answers from its queue."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from tests.conftest import answer, log_in, open_settings, send, settings_saved
from tests.fakes.upstream import Call, Reply, Text
from tests.web.test_browser_routes import choose_model

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the dev dependencies include Playwright
    expect = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("orm_beside_playwright"),
]

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def declare(page: Page, name: str, description: str, schema: dict[str, Any]) -> None:
    opener = page.get_by_role("button", name="Add function")
    if opener.get_attribute("aria-expanded") != "true":
        opener.click()
    page.get_by_role("textbox", name="Function name").fill(name)
    page.get_by_role("textbox", name="Function description").fill(description)
    page.get_by_role("textbox", name="Parameters (JSON Schema)").fill(json.dumps(schema))
    with settings_saved(page):
        page.get_by_role("button", name="Save function").click()
    declared = page.get_by_role("list", name="Declared functions")
    expect(declared).to_contain_text(name)


def answer_results(page: Page, results: dict[str, str]) -> None:
    reply = answer(page)
    for name, text in results.items():
        reply.get_by_role("textbox", name=f"Result for {name}").fill(text)
    reply.get_by_role("button", name="Send results").click()


def test_functions_are_declared_removed_and_refused_by_name_in_the_panel(page: Page, aimlapi):
    log_in(page)
    open_settings(page)
    declare(page, "get_weather", "The weather in a city", CITY)
    declare(page, "get_time", "The time in a city", CITY)
    choice = page.get_by_role("combobox", name="Tool choice")
    expect(choice.locator("option")).to_have_text(
        ["Model default", "None", "Auto", "Required", "get_weather", "get_time"]
    )
    page.get_by_role("button", name="Add function").click()
    page.get_by_role("textbox", name="Function name").fill("get_weather")
    page.get_by_role("button", name="Save function").click()
    expect(page.get_by_role("alert").filter(has_text="declared already")).to_be_visible()
    page.get_by_role("textbox", name="Function name").fill("no spaces please")
    page.get_by_role("button", name="Save function").click()
    expect(page.get_by_role("alert").filter(has_text="1 to 64 letters")).to_be_visible()

    with settings_saved(page):
        page.get_by_role("button", name="Remove get_time").click()
    declared = page.get_by_role("list", name="Declared functions")
    expect(declared.get_by_role("listitem")).to_have_count(1)

    # The list as JSON, to export or import: a duplicate typed there is refused by the server.
    page.get_by_text("Import or export as JSON").click()
    box = page.get_by_role("textbox", name="Functions as JSON")
    listed = json.loads(box.input_value())
    assert [f["name"] for f in listed] == ["get_weather"]
    with settings_saved(page):
        box.fill(json.dumps(listed * 2))
        box.press("Tab")
    expect(page.locator("#err-functions")).to_contain_text("declared twice")

    # Parameters that are no JSON Schema are refused by the server, naming the function.
    box.fill(json.dumps(listed))
    page.get_by_role("button", name="Add function").click()
    page.get_by_role("textbox", name="Function name").fill("broken")
    page.get_by_role("textbox", name="Parameters (JSON Schema)").fill('{"type": 12}')
    with settings_saved(page):
        page.get_by_role("button", name="Save function").click()
    expect(page.locator("#err-functions")).to_contain_text(
        "The parameters of broken is not a valid JSON Schema"
    )


def test_a_function_saved_while_an_earlier_autosave_answers_is_kept(page: Page, aimlapi):
    """An autosave that changes the functions is answered with the options section drawn
    again. An answer arriving after a newer change (while that change waits out the panel's
    trigger delay) must not draw the list it saved over the newer one: the function just
    added would be gone, and the next autosave would send the list without it."""
    log_in(page)
    open_settings(page)
    declare(page, "get_weather", "The weather in a city", CITY)
    held: list[Any] = []

    def hold_first_post(route: Any) -> None:
        if route.request.method == "POST" and not held:
            held.append((route, route.fetch()))  # answered by the server, not yet by the page
        else:
            route.continue_()

    page.route("**/settings/**", hold_first_post)
    page.get_by_text("Import or export as JSON").click()
    box = page.get_by_role("textbox", name="Functions as JSON")
    with page.expect_request(lambda r: r.method == "POST" and "/settings/" in r.url):
        box.fill(box.input_value() + "\n")  # the same list: an autosave of the functions
        box.press("Tab")
    page.get_by_role("button", name="Add function").click()
    page.get_by_role("textbox", name="Function name").fill("get_time")
    with settings_saved(page):
        page.get_by_role("button", name="Save function").click()
        route, response = held[0]
        route.fulfill(response=response)  # within the newer change's 150 ms delay
    declared = page.get_by_role("list", name="Declared functions")
    expect(declared.get_by_role("listitem")).to_have_count(2)
    expect(declared).to_contain_text("get_time")
    assert [f["name"] for f in json.loads(box.input_value())] == ["get_weather", "get_time"]


def test_a_two_round_parallel_function_call_on_ai_ml_api(page: Page, aimlapi):
    log_in(page)
    open_settings(page)
    declare(page, "get_weather", "The weather in a city", CITY)
    declare(page, "get_time", "The time in a city", CITY)
    with settings_saved(page):
        page.get_by_role("checkbox", name="Parallel calls").check()
    with settings_saved(page):
        page.get_by_role("combobox", name="Tool choice").select_option("auto")

    aimlapi.enqueue(
        Reply(
            [
                Call("get_weather", '{"city": "Bern"}', id="call_w1", call=0),
                Call("get_time", '{"city": "Bern"}', id="call_t1", call=1),
            ],
            finish="tool_calls",
        ),
        Reply(
            [
                Call("get_weather", '{"city": "Thun"}', id="call_w2", call=0),
                Call("get_time", '{"city": "Thun"}', id="call_t2", call=1),
            ],
            finish="tool_calls",
        ),
        Reply([Text("Bern: 21 °C at 14:05; "), Text("Thun: 19 °C at 14:05.")]),
    )
    send(page, "Weather and time in Bern, then Thun?")

    first = aimlapi.requests[-1].json
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather", "get_time"]
    assert first["tools"][0]["function"]["parameters"] == CITY
    assert (first["tool_choice"], first["parallel_tool_calls"]) == ("auto", True)

    reply = answer(page)
    weather = reply.get_by_role("group", name="Function call: get_weather")
    expect(weather).to_contain_text('"city": "Bern"')
    expect(reply.get_by_role("group", name="Function call: get_time")).to_be_visible()
    answer_results(page, {"get_weather": '{"temp": 21}', "get_time": "14:05"})

    expect(answer(page).get_by_role("group", name="Function call: get_weather")).to_contain_text(
        '"city": "Thun"'
    )
    second = aimlapi.requests[-1].json["messages"]
    assert second[-3:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_w1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Bern"}'},
                },
                {
                    "id": "call_t1",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"city": "Bern"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_w1", "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": "call_t1", "content": "14:05"},
    ]

    page.reload()  # the calls and the results are the conversation's history
    results = page.get_by_role("article", name="Function results")
    expect(results.get_by_role("group", name="Result for get_weather")).to_contain_text(
        '{"temp": 21}'
    )
    # The first round's answer shows its calls, no longer their fields.
    expect(page.get_by_role("textbox", name="Result for get_weather")).to_have_count(1)
    answer_results(page, {"get_weather": '{"temp": 19}', "get_time": "14:05"})

    expect(answer(page).locator(".msg-body")).to_have_text(
        "Bern: 21 °C at 14:05; Thun: 19 °C at 14:05."
    )
    third = aimlapi.requests[-1].json["messages"]
    assert [m["role"] for m in third] == [
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "tool",
        "tool",
    ]
    assert third[4]["tool_calls"][0]["id"] == "call_w2"
    assert third[5:] == [
        {"role": "tool", "tool_call_id": "call_w2", "content": '{"temp": 19}'},
        {"role": "tool", "tool_call_id": "call_t2", "content": "14:05"},
    ]
    assert len(aimlapi.requests) == 3


SIG_1 = base64.b64encode(hashlib.sha256(b"round one").digest() * 4).decode()
# The URL-safe alphabet: re-encoding would change it, which Google refuses.
SIG_2 = base64.urlsafe_b64encode(hashlib.sha512(b"round two").digest() * 2).decode()


def test_a_two_round_parallel_function_call_on_google_replays_signatures_byte_for_byte(
    page: Page, all_routes
):
    log_in(page)
    open_settings(page)
    choose_model(page, "gemini:gemini-3-flash-preview")
    declare(page, "get_weather", "The weather in a city", CITY)
    declare(page, "get_time", "The time in a city", CITY)
    expect(page.get_by_role("checkbox", name="Parallel calls")).to_have_count(0)
    with settings_saved(page):
        page.get_by_role("combobox", name="Tool choice").select_option("required")

    all_routes.enqueue(
        Reply(
            [
                Call("get_weather", '{"city": "Bern"}', id="w1", signature=SIG_1),
                Call("get_time", '{"city": "Bern"}', id="t1"),
            ]
        ),
        Reply(
            [
                Text("Now Thun. ", signature=SIG_2),
                Call("get_weather", '{"city": "Thun"}'),
                Call("get_time", '{"city": "Thun"}'),
            ]
        ),
        Reply([Text("Bern: 21 °C, Thun: 19 °C, both at 14:05.")]),
    )
    send(page, "Weather and time in Bern, then Thun?")
    first = all_routes.last_request.json
    assert [d["name"] for d in first["tools"][0]["functionDeclarations"]] == [
        "get_weather",
        "get_time",
    ]
    assert first["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    expect(answer(page).get_by_role("group", name="Function call: get_time")).to_be_visible()

    page.reload()  # the signatures come back from the database, not from the run
    answer_results(page, {"get_weather": '{"temp": 21}', "get_time": "14:05"})
    expect(answer(page).locator(".msg-body")).to_have_text("Now Thun.")
    second = all_routes.last_request.json["contents"]
    assert second[1:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Bern"}, "id": "w1"},
                    "thoughtSignature": SIG_1,
                },
                {"functionCall": {"name": "get_time", "args": {"city": "Bern"}, "id": "t1"}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}, "id": "w1"}},
                {
                    "functionResponse": {
                        "name": "get_time",
                        "response": {"result": "14:05"},
                        "id": "t1",
                    }
                },
            ],
        },
    ]

    page.reload()
    answer_results(page, {"get_weather": '{"temp": 19}', "get_time": "14:05"})
    expect(answer(page).locator(".msg-body")).to_have_text(
        "Bern: 21 °C, Thun: 19 °C, both at 14:05."
    )
    third = all_routes.last_request.json["contents"]
    assert [c["role"] for c in third] == ["user", "model", "user", "model", "user"]
    assert third[1] == second[1]  # the first step, still byte for byte
    assert third[3] == {
        "role": "model",
        "parts": [
            {"text": "Now Thun. ", "thoughtSignature": SIG_2},
            {"functionCall": {"name": "get_weather", "args": {"city": "Thun"}}},
            {"functionCall": {"name": "get_time", "args": {"city": "Thun"}}},
        ],
    }
    assert third[4]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp": 19}}},
        {"functionResponse": {"name": "get_time", "response": {"result": "14:05"}}},
    ]
    assert len(all_routes.requests) == 3


def test_a_two_round_parallel_function_call_on_segmind_replays_signatures_byte_for_byte(
    page: Page, all_routes
):
    log_in(page)
    open_settings(page)
    choose_model(page, "segmind:gemini-3-pro")
    declare(page, "get_weather", "The weather in a city", CITY)
    declare(page, "get_time", "The time in a city", CITY)
    expect(page.get_by_role("checkbox", name="Parallel calls")).to_have_count(0)

    all_routes.enqueue(
        Reply(
            [
                Call("get_weather", '{"city": "Bern"}', signature=SIG_1),
                Call("get_time", '{"city": "Bern"}'),
            ]
        ),
        Reply(
            [
                Call("get_weather", '{"city": "Thun"}', signature=SIG_2),
                Call("get_time", '{"city": "Thun"}'),
            ]
        ),
        Reply([Text("Bern 21 °C, Thun 19 °C.")]),
    )
    send(page, "Weather and time in Bern, then Thun?")
    first = all_routes.last_request.json["messages"]
    assert [d["name"] for d in first["tools"][0]["functionDeclarations"]] == [
        "get_weather",
        "get_time",
    ]
    expect(answer(page).get_by_role("group", name="Function call: get_time")).to_be_visible()

    page.reload()
    answer_results(page, {"get_weather": '{"temp": 21}', "get_time": "14:05"})
    expect(answer(page).get_by_role("group", name="Function call: get_weather")).to_contain_text(
        "Thun"
    )
    step_one = {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Bern"}},
                "thoughtSignature": SIG_1,
            },
            {"functionCall": {"name": "get_time", "args": {"city": "Bern"}}},
        ],
    }
    second = all_routes.last_request.json["messages"]["contents"]
    assert second[1] == step_one
    assert second[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
        {"functionResponse": {"name": "get_time", "response": {"result": "14:05"}}},
    ]

    page.reload()
    answer_results(page, {"get_weather": '{"temp": 19}', "get_time": "14:06"})
    expect(answer(page).locator(".msg-body")).to_have_text("Bern 21 °C, Thun 19 °C.")
    third = all_routes.last_request.json["messages"]["contents"]
    assert [c["role"] for c in third] == ["user", "model", "user", "model", "user"]
    assert third[1] == step_one
    assert third[3]["parts"][0] == {
        "functionCall": {"name": "get_weather", "args": {"city": "Thun"}},
        "thoughtSignature": SIG_2,
    }
    assert f'"thoughtSignature":"{SIG_2}"'.encode() in all_routes.last_request.body
    assert len(all_routes.requests) == 3
