"""Forms that collect what the browser sent; the services check it (and name each limit)."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm, UsernameField
from django.contrib.auth.models import User
from django.core.validators import ProhibitNullCharactersValidator


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


class MessageTextField(forms.CharField):
    """The person's message, as typed: not stripped (leading spaces and trailing newlines are
    their text), and not refused here for a NUL character: the service refuses what it cannot
    store with a message that says so (Django's own says only "Null characters are not
    allowed.", which the composer would have shown as an expired form)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, strip=False, **kwargs)
        self.validators = [
            v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)
        ]


class ComposerForm(forms.Form):
    # The length limit is enforced by the service, whose message names it.
    text = MessageTextField()
    idempotency_key = forms.UUIDField()
    # Uploaded images to send with the text, in order (how many, and whose, is checked by the
    # service).
    attachments = UUIDListField(required=False)
    # The answer at the end of the branch the page shows (app.js keeps it in step): the
    # message follows it, whichever branch another tab has shown since.
    parent = forms.UUIDField(required=False)


class EditForm(forms.Form):
    """An edited message: its text, the images it keeps, a key against a double submit."""

    text = MessageTextField()
    idempotency_key = forms.UUIDField()
    attachments = UUIDListField(required=False)
