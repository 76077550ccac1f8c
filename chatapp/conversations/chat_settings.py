"""A conversation's settings: the model, the system prompt and the generation parameters the
person set, validated through one door (`chat_settings_validate`) wherever they come from: the
settings panel, a send, a retry with the stored settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from chatapp.core.errors import InvalidSettings
from chatapp.providers import catalog, params

from .models import Conversation


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """Validated settings: the model and the parameters the person set, typed. `options` are
    those the model takes (what is sent); `set_aside` holds values for parameters it does not
    take, kept and shown ("Not sent to …"), never sent, back in use with a model that takes
    them: choosing another model never blocks Send, and loses nothing."""

    spec: catalog.ModelSpec
    system_prompt: str
    options: dict[str, Any]
    set_aside: dict[str, Any] = field(default_factory=dict)

    @property
    def stored(self) -> dict[str, Any]:
        """What a conversation (or a preset) keeps: every value set, in registry order."""
        values = {**self.options, **self.set_aside}
        return {p.name: values[p.name] for p in params.PARAMETERS if p.name in values}


def chat_settings_validate(
    *, spec: catalog.ModelSpec | None, system_prompt: str, raw_options: Mapping[str, Any]
) -> ChatSettings:
    """Check settings against the model chosen (None: it is not offered here). Raises
    InvalidSettings with each field's message, every limit and the model named."""
    if spec is None:
        raise InvalidSettings(
            "Choose a model from the list.",
            {"model": "This model is not available on this server."},
        )
    limit = settings.CHAT_LIMITS["system_prompt_chars"]
    errors: dict[str, str] = {}
    if len(system_prompt) > limit:
        errors["system_prompt"] = (
            f"The system prompt is {len(system_prompt):,} characters; the limit is {limit:,}."
        )
    taken = {name: value for name, value in raw_options.items() if name in spec.ranges}
    options, option_errors = catalog.validate_options(spec, taken)
    set_aside, aside_errors = _set_aside(spec, raw_options)
    errors.update(option_errors)
    errors.update(aside_errors)
    if errors:
        raise InvalidSettings("Some settings are out of range for this model.", errors)
    return ChatSettings(
        spec=spec, system_prompt=system_prompt, options=options, set_aside=set_aside
    )


def _set_aside(
    spec: catalog.ModelSpec, raw_options: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The values set for parameters `spec` does not take, typed as a model that takes them
    would read them (what cannot be read even so is an error: nothing is dropped unseen)."""
    elsewhere = {
        parameter.name: shape
        for parameter in params.PARAMETERS
        if parameter.name not in spec.ranges
        and (shape := catalog.any_range(parameter.name)) is not None
    }
    aside = {name: value for name, value in raw_options.items() if name not in spec.ranges}
    return params.validate(elsewhere, aside, model="the models that take it")


def chat_settings_stored(
    *,
    conversation: Conversation,
    spec: catalog.ModelSpec | None = None,
    routes: catalog.Routes | None = None,
) -> ChatSettings:
    """The conversation's saved settings, checked again: the model may have left the catalog
    or changed its ranges since they were saved. With `spec`, for that model instead (an
    answer regenerated with another one): what it does not take is set aside, not sent.
    `routes`: those the conversation's owner can use (None: the server's)."""
    if spec is not None:
        return chat_settings_validate(
            spec=spec, system_prompt=conversation.system_prompt, raw_options=conversation.settings
        )
    spec = catalog.get_model(conversation.route, conversation.model, routes)
    if spec is None:
        raise InvalidSettings(
            f"The model this conversation used ({conversation.model}) is not available on "
            "this server any more; choose another in Settings.",
            {"model": "This model is not available on this server."},
        )
    return chat_settings_validate(
        spec=spec, system_prompt=conversation.system_prompt, raw_options=conversation.settings
    )
