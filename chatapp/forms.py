"""Forms: they collect what the browser sent; ranges are checked by the model catalog."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from . import services
from .providers import catalog


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
    # Gemini-native routes (providers.catalog): plain text until the panel gets its own
    # controls; the catalog parses and range-checks them like the others.
    top_k = forms.CharField(required=False)
    candidate_count = forms.CharField(required=False)
    json_output = forms.CharField(required=False)
    thinking_budget = forms.CharField(required=False)
    thinking_level = forms.CharField(required=False)
    safety_settings = forms.CharField(required=False, strip=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            self.chat_settings = services.chat_settings_validate(
                model_key=data["model"],
                system_prompt=data.get("system_prompt", ""),
                raw_options={name: data.get(name) for name in catalog.PARAM_ORDER},
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
            if isinstance(value, list):
                initial[name] = "\n".join(value)
            elif isinstance(value, dict):  # safety settings: one category=threshold a line
                initial[name] = "\n".join(f"{k}={v}" for k, v in value.items())
            elif isinstance(value, bool):
                initial[name] = "on" if value else ""
            else:
                initial[name] = str(value)
        return initial
