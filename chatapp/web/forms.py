"""Forms that collect what the browser sent; the services check it (and name each limit)."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm, UsernameField
from django.contrib.auth.models import User


class SignupForm(UserCreationForm):
    """Django's standard username / password / password confirmation."""

    class Meta:
        model = User
        fields = ("username",)
        field_classes = {"username": UsernameField}


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
