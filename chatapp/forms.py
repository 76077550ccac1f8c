"""Forms: they collect what the browser sent; ranges are checked by the model catalog."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from . import services
from .providers import catalog
from .providers.base import ParamSpec


class SignupForm(UserCreationForm):
    """Django's standard username / password / password confirmation."""

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)


class UUIDListField(forms.Field):
    """Every value of a repeated field (`<input type="hidden" name="x">` once per item)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[uuid.UUID]:
        if not value:
            return []
        try:
            return [uuid.UUID(str(item)) for item in value]
        except ValueError:
            raise forms.ValidationError("Not an id.", code="invalid") from None


class ComposerForm(forms.Form):
    # Not stripped: leading spaces and trailing newlines are the person's text. The length
    # limit is enforced by the service, whose message names it.
    text = forms.CharField(required=False, strip=False)
    idempotency_key = forms.UUIDField()
    # Uploaded images to send with the text, in order (how many, and whose, is checked by the
    # service).
    attachments = UUIDListField(required=False)


# Google's safety settings as the panel shows them: one select per harm category (the
# form combines them into the `safety_settings` option), labelled in a person's words.
HARM_LABELS = {
    "HARM_CATEGORY_HARASSMENT": "Harassment",
    "HARM_CATEGORY_HATE_SPEECH": "Hate speech",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT": "Sexually explicit",
    "HARM_CATEGORY_DANGEROUS_CONTENT": "Dangerous content",
}
SAFETY_FIELDS: tuple[tuple[str, str], ...] = tuple(
    (f"safety_{category.removeprefix('HARM_CATEGORY_').lower()}", category)
    for category in catalog.HARM_CATEGORIES
)
THRESHOLD_LABELS = {
    "BLOCK_LOW_AND_ABOVE": "Block low and above",
    "BLOCK_MEDIUM_AND_ABOVE": "Block medium and above",
    "BLOCK_ONLY_HIGH": "Block only high",
    "BLOCK_NONE": "Block none",
    "OFF": "Off",
}
# Offered only when it already holds a value: the app reads the first candidate only, so
# more candidates would be billed and never shown (see SettingsForm.controls).
HIDDEN_UNLESS_SET = frozenset({"candidate_count"})
_OFF = frozenset({"0", "false", "no", "off", "text", "text/plain"})


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: str
    selected: bool


@dataclass(frozen=True, slots=True)
class Select:
    name: str
    label: str
    choices: tuple[Choice, ...]


@dataclass(frozen=True, slots=True)
class ParamControl:
    """One parameter of the settings panel, ready for the template. `control` is "text",
    "stop" (a textarea, one sequence a line), "checkbox", "select" or "safety" (`selects`,
    one per harm category)."""

    name: str
    label: str
    control: str
    value: str = ""
    hint: str = ""
    error: str = ""
    inputmode: str = "decimal"
    choices: tuple[Choice, ...] = ()
    selects: tuple[Select, ...] = ()

    @property
    def checked(self) -> bool:
        return bool(self.value.strip()) and self.value.strip().lower() not in _OFF

    @property
    def wide(self) -> bool:
        return self.control in ("stop", "safety")


class SettingsForm(forms.Form):
    """The settings panel. Every parameter is optional; an empty field is not sent."""

    model = forms.CharField()
    system_prompt = forms.CharField(required=False, strip=False)
    temperature = forms.CharField(required=False)
    top_p = forms.CharField(required=False)
    max_tokens = forms.CharField(required=False)
    max_completion_tokens = forms.CharField(required=False)
    frequency_penalty = forms.CharField(required=False)
    presence_penalty = forms.CharField(required=False)
    stop = forms.CharField(required=False, strip=False)
    seed = forms.CharField(required=False)
    # Gemini-native routes (providers.catalog), parsed and range-checked like the others.
    top_k = forms.CharField(required=False)
    candidate_count = forms.CharField(required=False)
    json_output = forms.CharField(required=False)  # a checkbox: "on", or empty
    thinking_budget = forms.CharField(required=False)
    thinking_level = forms.CharField(required=False)
    # Safety settings come from the panel's four selects (SAFETY_FIELDS), or from other
    # clients as `category=threshold` lines in `safety_settings`.
    safety_settings = forms.CharField(required=False, strip=False)
    safety_harassment = forms.CharField(required=False)
    safety_hate_speech = forms.CharField(required=False)
    safety_sexually_explicit = forms.CharField(required=False)
    safety_dangerous_content = forms.CharField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            self.chat_settings = services.chat_settings_validate(
                model_key=data["model"],
                system_prompt=data.get("system_prompt", ""),
                raw_options=raw_options(data),
            )
        except services.InvalidSettings as exc:
            for field, message in exc.errors.items():
                self.add_error(field if field in self.fields else None, message)
        return data

    @classmethod
    def initial_for(
        cls, spec: catalog.ModelSpec, system_prompt: str, options: dict[str, Any]
    ) -> dict[str, Any]:
        initial: dict[str, Any] = {"model": spec.key, "system_prompt": system_prompt}
        for name, value in options.items():
            if name == "safety_settings" and isinstance(value, dict):
                for field, category in SAFETY_FIELDS:
                    if category in value:
                        initial[field] = str(value[category])
            elif isinstance(value, list):
                initial[name] = "\n".join(value)
            elif isinstance(value, bool):
                initial[name] = "on" if value else ""
            else:
                initial[name] = str(value)
        return initial

    def controls(
        self, spec: catalog.ModelSpec, *, posted: Collection[str] | None = None
    ) -> list[ParamControl]:
        """The parameters the panel shows for `spec`, in catalog order: those the model
        accepts, plus any that holds a value the model does not accept, with its error, so
        nothing is dropped unseen. Candidate count is left out unless it holds a value: only
        the first candidate is ever shown, so more would only cost. `posted` names the
        fields the browser sent (those on the page now), which stay listed so that their
        errors can be cleared in place."""
        values = {name: self._value(name) for name in self.fields}
        errors = self._display_errors(spec, values)
        sent = set(posted or ())
        if sent & {field for field, _ in SAFETY_FIELDS}:
            sent.add("safety_settings")
        shown = []
        for name in catalog.PARAM_ORDER:
            offered = name in spec.params and name not in HIDDEN_UNLESS_SET
            if offered or name in sent or _has_value(name, values):
                shown.append(_control(name, spec, values, errors.get(name, "")))
        return shown

    def _value(self, name: str) -> str:
        value = self[name].value()
        return "" if value is None else str(value)

    def _display_errors(self, spec: catalog.ModelSpec, values: Mapping[str, str]) -> dict:
        if self.is_bound:
            return {name: " ".join(messages) for name, messages in self.errors.items()}
        # Stored settings the model no longer accepts (it changed, or left the catalog) are
        # marked when the page is drawn, not only after the first change.
        return catalog.validate_options(spec, raw_options(values))[1]


def raw_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """The catalog's raw options from form values: the safety selects become one mapping."""
    raw = {name: values.get(name) for name in catalog.PARAM_ORDER}
    chosen = {category: values[field] for field, category in SAFETY_FIELDS if values.get(field)}
    if chosen:
        raw["safety_settings"] = chosen
    return raw


def _has_value(name: str, values: Mapping[str, str]) -> bool:
    if name == "safety_settings" and any(values.get(field) for field, _ in SAFETY_FIELDS):
        return True
    return bool(str(values.get(name) or "").strip())


@cache
def _any_param(name: str) -> ParamSpec | None:
    """The parameter as some model defines it: how to show a value the chosen model does not
    accept."""
    for specs in catalog.CATALOG.values():
        for spec in specs:
            if name in spec.params:
                return spec.params[name]
    return None


def _control(
    name: str, spec: catalog.ModelSpec, values: Mapping[str, str], error: str
) -> ParamControl:
    param = spec.params.get(name)
    shape = param or _any_param(name)
    kind = shape.kind if shape is not None else "float"
    label = catalog.PARAM_LABELS.get(name, name)
    hint = _hint(spec, name, param)
    value = values.get(name, "")
    if kind == "safety":
        thresholds = param.choices if param is not None else catalog.SAFETY_THRESHOLDS
        selects = tuple(
            Select(
                field,
                HARM_LABELS[category],
                _choices(values.get(field, ""), thresholds, THRESHOLD_LABELS, "Google's default"),
            )
            for field, category in SAFETY_FIELDS
        )
        return ParamControl(name, label, "safety", hint=hint, error=error, selects=selects)
    if kind == "bool":
        return ParamControl(name, label, "checkbox", value=value, hint=hint, error=error)
    if kind == "choice":
        levels = param.choices if param is not None else ()
        choices = _choices(value, levels, {}, "Model default")
        return ParamControl(
            name, label, "select", value=value, hint=hint, error=error, choices=choices
        )
    if kind == "stop":
        return ParamControl(name, label, "stop", value=value, hint=hint, error=error)
    inputmode = "decimal"
    if kind == "int" and shape is not None:
        negative = (shape.minimum or 0) < 0 or any(v < 0 for v, _ in shape.special)
        # Phone keypads for "numeric" have no minus sign.
        inputmode = "text" if negative else "numeric"
    return ParamControl(
        name, label, "text", value=value, hint=hint, error=error, inputmode=inputmode
    )


def _choices(
    current: str, options: tuple[str, ...], labels: Mapping[str, str], empty: str
) -> tuple[Choice, ...]:
    """A select's options; a value held but not among them is kept as the selected option
    (its error says why), so saving again never drops it unseen."""
    current = current.strip()
    items = [Choice("", empty, not current)]
    matched = False
    for option in options:
        selected = bool(current) and current.lower() == option.lower()
        matched |= selected
        items.append(Choice(option, labels.get(option, option.capitalize()), selected))
    if current and not matched:
        items.append(Choice(current, current, True))
    return tuple(items)


def _hint(spec: catalog.ModelSpec, name: str, param: ParamSpec | None) -> str:
    if param is None:
        return ""  # shown only while it holds a value, with the error that says why
    if param.kind == "safety":
        return "Empty: Google's default for that category."
    if param.kind == "bool":
        return "Answers as JSON (application/json)."
    if param.kind == "choice":
        return "Empty: the model's default."
    hint = param.describe()
    if param.default is not None:
        hint += f"; {param.default} when empty"
    if name == "candidate_count":
        hint += "; only the first answer is shown, the others are billed all the same"
    return hint
