"""The settings panel: its form, its controls and the context its templates draw.

Every parameter field and control is derived from the parameter registry
(`providers.params.PARAMETERS`): the form has one field per parameter (and one select per harm
category for the safety settings), the panel shows those the chosen model accepts, grouped as
the registry says, with their ranges as hints. Validation is `conversations.chat_settings`'
one door.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from django import forms

from chatapp.conversations.chat_settings import ChatSettings, chat_settings_validate
from chatapp.core.errors import InvalidSettings
from chatapp.providers import catalog, functions, params
from chatapp.providers.gemini.safety import ADJUSTABLE_CATEGORIES, THRESHOLDS
from chatapp.providers.params import Parameter, Range

from .forms import SparseForm, share_fields
from .requests import AuthenticatedRequest

# The safety settings as the panel shows them: one select per harm category, combined by the
# form into the `safety_settings` option.
SAFETY_FIELDS: tuple[tuple[str, str], ...] = tuple(
    (f"safety_{category.removeprefix('HARM_CATEGORY_').lower()}", category)
    for category in ADJUSTABLE_CATEGORIES
)


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
    group: str
    value: str = ""
    hint: str = ""
    error: str = ""
    inputmode: str = "decimal"
    choices: tuple[Choice, ...] = ()
    selects: tuple[Select, ...] = ()
    # The parameter's kind (a "schema" box offers the saved schemas, a "bias" box does not)
    # and whether a bool is drawn as a switch.
    kind: str = ""
    switch: bool = False

    @property
    def checked(self) -> bool:
        return bool(self.value.strip()) and self.value.strip().lower() not in params.OFF_WORDS

    @property
    def wide(self) -> bool:
        return self.control in ("stop", "safety", "schema", "functions")


@dataclass(frozen=True, slots=True)
class SetAside:
    """Values the chosen model does not take ("Not sent to Gemini 2.5 Flash on Segmind: Top K
    40"), their hidden fields, and the model they came from, if it can take them back."""

    spec: catalog.ModelSpec
    summary: str
    fields: tuple[tuple[str, str], ...]
    error: str = ""
    restore_to: catalog.ModelSpec | None = None


@dataclass(frozen=True, slots=True)
class ControlGroup:
    heading: str
    controls: tuple[ParamControl, ...]


class SettingsForm(SparseForm):
    """The settings panel. Every parameter is optional; an empty field is not sent. The
    parameter fields are added below, from the registry."""

    model = forms.CharField()
    system_prompt = forms.CharField(required=False, strip=False)

    chat_settings: ChatSettings

    def __init__(self, *args: Any, routes: catalog.Routes | None = None, **kwargs: Any) -> None:
        # The routes the person can use (web.requests.person_routes); None: the server's.
        self.routes = routes
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            self.chat_settings = chat_settings_validate(
                spec=catalog.get_model_by_key(data["model"], self.routes),
                system_prompt=data.get("system_prompt", ""),
                raw_options=raw_options(data),
            )
        except InvalidSettings as exc:
            for field, message in exc.errors.items():
                self.add_error(field if field in self.fields else None, message)
        return data

    @classmethod
    def initial_for(
        cls, spec: catalog.ModelSpec, system_prompt: str, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        initial: dict[str, Any] = {"model": spec.key, "system_prompt": system_prompt}
        for name, value in options.items():
            if name == "functions" and isinstance(value, list):  # as JSON, to export or edit
                initial[name] = json.dumps(value, indent=2, ensure_ascii=False)
            elif name == "safety_settings" and isinstance(value, dict):
                for field, category in SAFETY_FIELDS:
                    if category in value:
                        initial[field] = str(value[category])
            elif isinstance(value, list):
                initial[name] = "\n".join(value)
            elif isinstance(value, dict):  # a JSON schema or a logit bias, as JSON
                initial[name] = json.dumps(value, indent=2, ensure_ascii=False)
            elif isinstance(value, bool):
                initial[name] = "on" if value else ""
            else:
                initial[name] = str(value)
        return initial

    def controls(
        self, spec: catalog.ModelSpec, *, posted: Collection[str] | None = None
    ) -> list[ParamControl]:
        """The parameters the panel shows for `spec`, in registry order: those the model
        accepts and the registry offers, plus any that holds a value the model does not
        accept, with its error, so nothing is dropped unseen. `posted` names the fields the
        browser sent (those on the page now), which stay listed so that their errors can be
        cleared in place."""
        values = {name: self._value(name) for name in self.fields}
        errors = self._display_errors(spec, values)
        sent = set(posted or ())
        if sent & {field for field, _ in SAFETY_FIELDS}:
            sent.add("safety_settings")
        shown = []
        for parameter in params.PARAMETERS:
            name = parameter.name
            if name not in spec.ranges:
                continue  # a value for it is set aside (see `set_aside`), not a control
            if parameter.offered or name in sent or _has_value(name, values):
                shown.append(_control(parameter, spec, values, errors.get(name, "")))
        return shown

    def set_aside(self, spec: catalog.ModelSpec) -> SetAside | None:
        """The values the form holds for parameters `spec` does not take: named in the
        panel's notice and carried along as hidden fields, so that an autosave keeps them."""
        values = {name: self._value(name) for name in self.fields}
        items: list[str] = []
        fields: list[tuple[str, str]] = []
        for parameter in params.PARAMETERS:
            name = parameter.name
            if name in spec.ranges or not _has_value(name, values):
                continue
            if parameter.kind == "safety":
                chosen = [(f, values[f]) for f, _ in SAFETY_FIELDS if values.get(f)]
                fields += chosen
                items.append(f"{parameter.label} ({len(chosen)} set)")
            else:
                fields.append((name, values[name]))
                if parameter.kind in ("schema", "bias", "functions"):
                    items.append(parameter.label)
                    continue
                shown = "on" if parameter.kind == "bool" else values[name].replace("\n", ", ")
                items.append(f"{parameter.label} {shown}")
        if not items:
            return None
        names = {name for name, _ in fields} | {"safety_settings"}
        problems = [str(m) for n, ms in self.errors.items() if n in names for m in ms]
        return SetAside(
            spec=spec, summary=" · ".join(items), fields=tuple(fields), error=" ".join(problems)
        )

    def _value(self, name: str) -> str:
        value = self[name].value()
        return "" if value is None else str(value)

    def _display_errors(self, spec: catalog.ModelSpec, values: Mapping[str, str]) -> dict[str, str]:
        if self.is_bound:
            return {name: " ".join(map(str, messages)) for name, messages in self.errors.items()}
        # Stored settings the model no longer accepts (it changed, or left the catalog) are
        # marked when the page is drawn, not only after the first change.
        try:
            chat_settings_validate(spec=spec, system_prompt="", raw_options=raw_options(values))
        except InvalidSettings as exc:
            return exc.errors
        return {}


def _parameter_fields() -> dict[str, forms.Field]:
    fields: dict[str, forms.Field] = {}
    for parameter in params.PARAMETERS:
        # Stop sequences and safety lines are kept exactly as typed (spaces can matter).
        strip = parameter.kind not in ("stop", "safety")
        fields[parameter.name] = forms.CharField(required=False, strip=strip)
    for field, _ in SAFETY_FIELDS:
        fields[field] = forms.CharField(required=False)
    return fields


SettingsForm.base_fields.update(_parameter_fields())
share_fields(SettingsForm)


def raw_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """The registry's raw options from form values: the safety selects become one mapping
    (other clients may send `category=threshold` lines in `safety_settings` instead)."""
    raw = {parameter.name: values.get(parameter.name) for parameter in params.PARAMETERS}
    chosen = {category: values[field] for field, category in SAFETY_FIELDS if values.get(field)}
    if chosen:
        raw["safety_settings"] = chosen
    return raw


def groups(controls: list[ParamControl]) -> list[ControlGroup]:
    """The controls under their groups' headings, in the registry's group order."""
    by_group: dict[str, list[ParamControl]] = {}
    for control in controls:
        by_group.setdefault(control.group, []).append(control)
    return [
        ControlGroup(heading, tuple(by_group[group]))
        for group, heading in params.GROUPS.items()
        if group in by_group
    ]


def _has_value(name: str, values: Mapping[str, str]) -> bool:
    if name == "safety_settings" and any(values.get(field) for field, _ in SAFETY_FIELDS):
        return True
    return bool(str(values.get(name) or "").strip())


def _control(
    parameter: Parameter, spec: catalog.ModelSpec, values: Mapping[str, str], error: str
) -> ParamControl:
    name = parameter.name
    accepted = spec.ranges.get(name)
    # A value the model does not accept is shown as some model defines it.
    shape = accepted or catalog.any_range(name) or Range()
    hint = parameter.hint(accepted) if accepted is not None else ""
    value = values.get(name, "")
    common = functools.partial(
        ParamControl,
        name,
        parameter.label,
        group=parameter.group,
        hint=hint,
        error=error,
        kind=parameter.kind,
        switch=parameter.switch,
    )
    if parameter.kind == "safety":
        selects = tuple(
            Select(
                field,
                ADJUSTABLE_CATEGORIES[category],
                _choices(values.get(field, ""), shape.choices, THRESHOLDS, "Google's default"),
            )
            for field, category in SAFETY_FIELDS
        )
        return common("safety", selects=selects)
    if parameter.kind == "bool":
        return common("checkbox", value=value)
    if parameter.kind == "choice":
        levels = accepted.choices if accepted is not None else ()
        empty = parameter.empty_label or "Model default"
        choices = _choices(value, levels, parameter.choice_labels, empty)
        return common("select", value=value, choices=choices)
    if parameter.kind == "functions":
        # The declared list as JSON (import and export), and its names, each removable.
        names = functions.declared_names(value)
        return common("functions", value=value, choices=tuple(Choice(n, n, False) for n in names))
    if parameter.kind == "tool_choice":
        fixed = ("none", "auto", "required")
        names = functions.declared_names(values.get("functions", ""))
        labels = {"none": "None", "auto": "Auto", "required": "Required"}
        levels = (*fixed, *names)
        choices = _choices(value, levels, {**labels, **{n: n for n in names}}, "Model default")
        return common("select", value=value, choices=choices)
    if parameter.kind in ("schema", "bias"):
        # JSON typed in a textarea (a schema, a logit bias's object).
        return common("schema", value=value)
    if parameter.kind == "stop":
        return common("stop", value=value)
    inputmode = "decimal"
    if parameter.kind == "int":
        negative = (shape.minimum or 0) < 0 or any(v < 0 for v, _ in shape.special)
        # Phone keypads for "numeric" have no minus sign.
        inputmode = "text" if negative else "numeric"
    return common("text", value=value, inputmode=inputmode)


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


# --- What the panel's templates draw -------------------------------------------------------------


def settings_context(
    form: SettingsForm,
    spec: catalog.ModelSpec,
    *,
    posted: Collection[str] | None = None,
    restore_from: catalog.ModelSpec | None = None,
) -> dict[str, Any]:
    """The context of the options section (`_settings_options.html`): the route of the chosen
    model, its note, the parameters the form shows for it, and the values it sets aside (with
    the model they can go back to, `restore_from`, when it takes them all)."""
    controls = form.controls(spec, posted=posted)
    aside = form.set_aside(spec)
    if aside is not None and restore_from is not None:
        names = {name for name, _ in aside.fields}
        names = {"safety_settings" if n.startswith("safety_") else n for n in names}
        if names <= set(restore_from.ranges):
            aside = SetAside(
                aside.spec, aside.summary, aside.fields, aside.error, restore_to=restore_from
            )
    return {
        "settings_form": form,
        "settings_spec": spec,
        "route_note": catalog.ROUTE_NOTES.get(spec.route, ""),
        "settings_controls": controls,
        "settings_groups": groups(controls),
        "settings_set_aside": aside,
    }


def settings_feedback(
    request: AuthenticatedRequest, form: SettingsForm, **extra: Any
) -> dict[str, Any]:
    """The context of `_settings_feedback.html` after a change in the panel. A new model
    re-renders the options section (its parameters differ); any other field gets its error,
    hint and the status swapped in place, so nothing moves under the cursor."""
    spec = catalog.get_model_by_key(
        form.data.get("model", ""), form.routes
    ) or catalog.default_model(form.routes)
    # app.js names the changed field (the request comes from the panel, not the field); the
    # section also records the model it was drawn for, which catches a model change folded
    # into a later one by the trigger's delay, or sent before its autosave.
    drawn_for = form.data.get("options_for")
    new_model = request.htmx.trigger_name == "model" or (
        drawn_for is not None and drawn_for != spec.key
    )
    previous = catalog.get_model_by_key(drawn_for, form.routes) if drawn_for and new_model else None
    # New functions change the Tool choice's options and the list: the section is drawn again.
    rerender = new_model or request.htmx.trigger_name == "functions"
    context = settings_context(
        form,
        spec,
        posted=None if new_model else set(form.data),
        restore_from=previous if previous is not None and previous.key != spec.key else None,
    )
    return {**context, "rerender": rerender, **extra}
