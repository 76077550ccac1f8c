"""A conversation's settings: the model, the system prompt and the generation parameters the
person set, validated through one door (`chat_settings_validate`) wherever they come from: the
settings panel, a send, a retry with the stored settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from chatapp.core.errors import InvalidSettings
from chatapp.providers import catalog

from .models import Conversation


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """Validated settings: the model and the parameters the person set, typed."""

    spec: catalog.ModelSpec
    system_prompt: str
    options: dict[str, Any]


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
    options, option_errors = catalog.validate_options(spec, raw_options)
    errors.update(option_errors)
    if errors:
        raise InvalidSettings("Some settings are out of range for this model.", errors)
    return ChatSettings(spec=spec, system_prompt=system_prompt, options=options)


def chat_settings_stored(*, conversation: Conversation) -> ChatSettings:
    """The conversation's saved settings, checked again: the model may have left the catalog
    or changed its ranges since they were saved."""
    spec = catalog.get_model(conversation.route, conversation.model)
    if spec is None:
        raise InvalidSettings(
            f"The model this conversation used ({conversation.model}) is not available on "
            "this server any more; choose another in Settings.",
            {"model": "This model is not available on this server."},
        )
    return chat_settings_validate(
        spec=spec, system_prompt=conversation.system_prompt, raw_options=conversation.settings
    )
