"""The parameter registry (chatapp/providers/params.py), called directly: every parameter is
declared completely; `validate` parses and range-checks what a person entered (empty is not
set, unaccepted parameters are errors naming the model, off words, choices, excluded pairs,
non-finite numbers, stop sequences); `with_defaults` fills each model default; `wire_fields`
places options in each wire format (nested paths, merged objects, no guessed fields, integers
as int, excluded pairs refused)."""

from __future__ import annotations

import pytest

from chatapp.providers import params
from chatapp.providers.params import (
    BY_NAME,
    GROUPS,
    PARAMETERS,
    Parameter,
    ParameterConflict,
    Range,
    Wire,
    validate,
    wire_fields,
    with_defaults,
)

MODEL = "Test Model 1"

# A model that accepts a bit of everything, built from ranges directly.
ACCEPTED = {
    "temperature": Range(0, 2),
    "top_p": Range(0.01, 1),
    "top_k": Range(1, 64),
    "seed": Range(1, 1000),
    "max_tokens": Range(1, 8192, default=2048),
    "stop": Range(max_items=2),
    "response_format": Range(choices=("json", "json_schema")),
    "json_schema": Range(),
    "thinking_budget": Range(1, 24_576, special=((0, "off"), (-1, "dynamic"))),
    "thinking_level": Range(choices=("LOW", "High")),
    "safety_settings": Range(
        choices=("BLOCK_NONE", "BLOCK_ONLY_HIGH"),
        keys=("HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_HATE_SPEECH"),
    ),
}


def check(raw: dict, accepted: dict | None = None) -> tuple[dict, dict]:
    return validate(ACCEPTED if accepted is None else accepted, raw, model=MODEL)


# --- The registry -----------------------------------------------------------------------------


@pytest.mark.parametrize("parameter", PARAMETERS, ids=lambda p: p.name)
def test_every_parameter_has_a_label_a_known_group_and_a_wire_path(parameter: Parameter):
    assert parameter.label.strip()
    assert parameter.group in GROUPS
    assert parameter.wire, f"{parameter.name} goes nowhere"
    assert set(parameter.wire) <= {"openai", "gemini"}
    assert all(wire.path and not wire.path.endswith(".") for wire in parameter.wire.values())


def test_parameter_names_are_unique_and_excluded_names_exist():
    assert len(BY_NAME) == len(PARAMETERS)
    for parameter in PARAMETERS:
        assert set(parameter.excludes) <= set(BY_NAME)


# --- validate: empty, unaccepted ---------------------------------------------------------------


@pytest.mark.parametrize("empty", [None, "", "   ", "\n", [], ["", ""], {}])
def test_an_empty_value_means_not_set_even_for_a_parameter_the_model_lacks(empty):
    assert check({"temperature": empty, "logprobs": empty}) == ({}, {})


def test_a_parameter_the_model_does_not_accept_is_an_error_naming_the_model():
    options, errors = check({"temperature": "0.5", "logit_bias": '{"1": 5}'})
    assert options == {"temperature": 0.5}
    assert errors == {"logit_bias": "Test Model 1 does not accept Logit bias; leave it empty."}


def test_options_come_back_typed_in_registry_order_whatever_order_they_came_in():
    options, errors = check({"seed": "7", "max_tokens": "100", "temperature": "1"})
    assert errors == {}
    assert list(options) == ["temperature", "seed", "max_tokens"]
    assert options == {"temperature": 1.0, "seed": 7, "max_tokens": 100}
    assert type(options["seed"]) is int
    assert type(options["temperature"]) is float


def test_names_outside_the_registry_are_ignored():
    assert check({"temperature": "1", "not_a_parameter": "5"}) == ({"temperature": 1.0}, {})


def test_typed_stored_values_validate_like_typed_ones():
    stored = {
        "temperature": 0.7,
        "top_k": 40,
        "stop": ["END"],
        "response_format": "json_schema",
        "json_schema": {"type": "object"},
    }
    assert check(stored) == (stored, {})


# --- validate: numbers -------------------------------------------------------------------------


def test_the_range_is_inclusive_and_out_of_range_names_the_range_and_the_model():
    assert check({"temperature": "0", "top_p": "1"}) == ({"temperature": 0.0, "top_p": 1.0}, {})
    _, errors = check({"temperature": "2.5"})
    assert errors == {"temperature": "Temperature must be 0–2 for Test Model 1 (got 2.5)."}


def test_a_minimum_alone_is_named_as_at_least():
    _, errors = check({"seed": "0"}, {"seed": Range(minimum=1)})
    assert errors == {"seed": "Seed must be at least 1 for Test Model 1 (got 0)."}


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", float("nan"), float("inf")])
def test_non_finite_numbers_are_refused(value):
    options, errors = check({"temperature": value})
    assert options == {}
    assert errors == {"temperature": "Temperature must be a finite number."}


@pytest.mark.parametrize("value", ["1.5", "ten", "inf"])
def test_an_integer_parameter_takes_whole_numbers_only(value):
    _, errors = check({"top_k": value})
    assert errors == {"top_k": f"Top K must be a whole number (got {value!r})."}


def test_a_bool_is_not_a_number():
    _, errors = check({"temperature": True})
    assert errors == {"temperature": "Temperature must be a number."}


def test_special_values_outside_the_range_are_accepted_and_named_when_refused():
    assert check({"thinking_budget": "0"}) == ({"thinking_budget": 0}, {})
    assert check({"thinking_budget": " -1 "}) == ({"thinking_budget": -1}, {})
    _, errors = check({"thinking_budget": "-2"})
    assert errors == {
        "thinking_budget": (
            "Thinking budget must be 1–24576, 0 (off) or -1 (dynamic) for Test Model 1 (got -2)."
        )
    }


# --- validate: bools and choices ---------------------------------------------------------------


# No parameter of the registry is a checkbox today; the kind stays for those to come.
FLAG = Parameter("flag", "Flag", "bool", "output", {})


@pytest.mark.parametrize("word", ["off", "OFF", "false", "0", "no", " text ", "text/plain", False])
def test_an_off_word_turns_a_bool_off_which_is_the_same_as_not_set(word):
    assert FLAG.parse(word, Range(), where="") is None


@pytest.mark.parametrize("word", ["on", "True", "1", "yes", "json", "application/json", True])
def test_an_on_word_turns_a_bool_on(word):
    assert FLAG.parse(word, Range(), where="") is True


def test_a_bool_that_is_neither_on_nor_off_is_an_error():
    with pytest.raises(ValueError, match=r"^Flag must be on or off \(got 'maybe'\)\.$"):
        FLAG.parse("maybe", Range(), where="")


@pytest.mark.parametrize(("typed", "stored"), [("low", "LOW"), (" HIGH ", "High"), ("Low", "LOW")])
def test_choices_match_case_insensitively_and_are_stored_as_spelled(typed, stored):
    assert check({"thinking_level": typed}) == ({"thinking_level": stored}, {})


def test_a_choice_not_offered_names_the_choices_and_the_model():
    _, errors = check({"thinking_level": "medium"})
    assert errors == {
        "thinking_level": "Thinking level must be low or high for Test Model 1 (got 'medium')."
    }


# --- validate: excluded pairs, stop sequences, safety -----------------------------------------


def test_a_thinking_budget_and_a_thinking_level_are_refused_together():
    _, errors = check({"thinking_budget": "1024", "thinking_level": "low"})
    assert errors == {
        "thinking_level": "Set either a thinking budget or a thinking level, not both."
    }
    # Either alone is fine.
    assert check({"thinking_budget": "1024"}) == ({"thinking_budget": 1024}, {})
    assert check({"thinking_level": "low"}) == ({"thinking_level": "LOW"}, {})


def test_an_excluded_partner_switched_off_is_no_conflict():
    assert check({"thinking_budget": "", "thinking_level": "low"}) == (
        {"thinking_level": "LOW"},
        {},
    )


def test_stop_sequences_are_kept_exactly_one_per_line_blank_lines_dropped():
    options, errors = check({"stop": " END \n\n###"})
    assert errors == {}
    assert options == {"stop": [" END ", "###"]}


def test_more_stop_sequences_than_max_items_names_the_limit_and_the_model():
    _, errors = check({"stop": "a\nb\nc"})
    assert errors == {
        "stop": "Stop sequences: at most 2 sequences for Test Model 1 (got 3); put one per line."
    }


def test_a_stop_sequence_over_the_character_limit_is_refused():
    too_long = "x" * (params.STOP_SEQUENCE_MAX_CHARS + 1)
    _, errors = check({"stop": [too_long]})
    assert errors == {
        "stop": f"Stop sequences: each sequence can be at most "
        f"{params.STOP_SEQUENCE_MAX_CHARS} characters."
    }
    exact = "x" * params.STOP_SEQUENCE_MAX_CHARS
    assert check({"stop": [exact]}) == ({"stop": [exact]}, {})


def test_safety_settings_from_text_are_normalised_in_the_order_of_the_keys():
    options, errors = check(
        {"safety_settings": "hate speech=block only high, harassment: block_none"}
    )
    assert errors == {}
    assert list(options["safety_settings"].items()) == [
        ("HARM_CATEGORY_HARASSMENT", "BLOCK_NONE"),
        ("HARM_CATEGORY_HATE_SPEECH", "BLOCK_ONLY_HIGH"),
    ]


def test_an_unknown_harm_category_names_the_model_and_the_categories():
    _, errors = check({"safety_settings": "violence=BLOCK_NONE"})
    assert errors == {
        "safety_settings": (
            "Safety settings: unknown harm category 'violence' for Test Model 1; "
            "use harassment, hate_speech."
        )
    }


# --- with_defaults -----------------------------------------------------------------------------


def test_with_defaults_fills_each_default_and_keeps_what_was_set():
    accepted = {"temperature": Range(0, 2), "max_tokens": Range(1, 8192, default=2048)}
    assert with_defaults(accepted, {}) == {"max_tokens": 2048}
    assert with_defaults(accepted, {"temperature": 0.5}) == {"temperature": 0.5, "max_tokens": 2048}
    assert with_defaults(accepted, {"max_tokens": 10}) == {"max_tokens": 10}


def test_with_defaults_sends_only_what_the_model_accepts():
    accepted = {"temperature": Range(0, 2)}
    assert with_defaults(accepted, {"temperature": 1.0, "top_k": 5}) == {"temperature": 1.0}
    assert with_defaults(accepted, {}) == {}


# --- wire_fields -------------------------------------------------------------------------------


def test_openai_fields_sit_at_the_top_of_the_body():
    options = {"temperature": 0.5, "top_p": 0.9, "max_completion_tokens": 300, "seed": 3}
    assert wire_fields(options, "openai") == options


def test_gemini_fields_nest_by_their_path_into_one_generation_config():
    options = {"temperature": 0.5, "top_k": 40, "max_tokens": 100, "response_format": "json"}
    assert wire_fields(options, "gemini") == {
        "generationConfig": {
            "temperature": 0.5,
            "topK": 40,
            "maxOutputTokens": 100,
            "responseMimeType": "application/json",
        }
    }


def test_two_parameters_writing_one_object_are_merged(monkeypatch):
    first = Parameter(
        "a", "A", "int", "thinking", {"gemini": Wire("config.obj", lambda v: {"a": v})}
    )
    second = Parameter(
        "b", "B", "int", "thinking", {"gemini": Wire("config.obj", lambda v: {"b": v})}
    )
    monkeypatch.setattr(params, "BY_NAME", {"a": first, "b": second})
    assert wire_fields({"a": 1, "b": 2}, "gemini") == {"config": {"obj": {"a": 1, "b": 2}}}


def test_a_thinking_config_and_other_config_share_the_generation_config():
    body = wire_fields({"thinking_budget": 0, "temperature": 1.0}, "gemini")
    assert body == {
        "generationConfig": {
            "thinkingConfig": {"thinkingBudget": 0, "includeThoughts": False},
            "temperature": 1.0,
        }
    }
    level = wire_fields({"thinking_level": "low"}, "gemini")
    assert level == {
        "generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW", "includeThoughts": True}}
    }


def test_options_without_a_place_in_the_format_are_never_sent():
    assert wire_fields({"top_k": 40, "thinking_budget": 2}, "openai") == {}
    assert wire_fields({"max_completion_tokens": 100}, "gemini") == {}
    assert wire_fields({"unknown_option": 1, "temperature": None}, "openai") == {}


def test_integers_are_sent_as_int_floats_as_they_are():
    body = wire_fields({"max_tokens": 100.0, "seed": 5.0, "temperature": 1.0}, "openai")
    assert body == {"max_tokens": 100, "seed": 5, "temperature": 1.0}
    assert type(body["max_tokens"]) is int
    assert type(body["seed"]) is int
    assert type(body["temperature"]) is float
    budget = wire_fields({"thinking_budget": 1024.0}, "gemini")
    assert type(budget["generationConfig"]["thinkingConfig"]["thinkingBudget"]) is int


def test_stop_sequences_are_always_sent_as_a_list_of_strings():
    assert wire_fields({"stop": "END"}, "openai") == {"stop": ["END"]}
    assert wire_fields({"stop": ["a", "b"]}, "gemini") == {
        "generationConfig": {"stopSequences": ["a", "b"]}
    }


def test_safety_settings_are_sent_as_category_threshold_pairs():
    chosen = {"HARM_CATEGORY_HARASSMENT": "BLOCK_NONE", "HARM_CATEGORY_HATE_SPEECH": "OFF"}
    assert wire_fields({"safety_settings": chosen}, "gemini") == {
        "safetySettings": [
            {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"},
            {"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"},
        ]
    }


@pytest.mark.parametrize(
    "options",
    [
        {"thinking_budget": 1024, "thinking_level": "LOW"},
        {"thinking_level": "LOW", "thinking_budget": 1024},
    ],
)
def test_excluded_pairs_are_a_parameter_conflict_whichever_comes_first(options):
    with pytest.raises(ParameterConflict) as caught:
        wire_fields(options, "gemini")
    assert str(caught.value) == "Set either a thinking budget or a thinking level, not both."


def test_an_excluded_partner_set_to_none_is_no_conflict():
    body = wire_fields({"thinking_level": "HIGH", "thinking_budget": None}, "gemini")
    assert body["generationConfig"]["thinkingConfig"]["thinkingLevel"] == "HIGH"
