"""Forms that collect what the browser sent; the services check it (and name each limit)."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm, UsernameField
from django.contrib.auth.models import User
from django.core.validators import ProhibitNullCharactersValidator

from chatapp.accounts.models import Membership
from chatapp.accounts.selectors import standing


class SharedFields(dict[str, forms.Field]):
    """A form class's fields, shared by its instances rather than deep-copied into each one
    (what Django's BaseForm does, in case an instance changes a field). Only for forms that
    never change a field per instance: copying the settings panel's ~40 fields, with their
    widgets, validators and messages, was 18% of a send's CPU (bench "turn cost")."""

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, forms.Field]:
        return dict(self)


def share_fields(form_class: type[forms.Form]) -> None:
    """Let `form_class`'s instances share its fields (see SharedFields)."""
    form_class.base_fields = SharedFields(form_class.base_fields)


class SparseForm(forms.Form):
    """A form of many optional text fields of which a POST sends a few (the settings panel
    sends only the parameters it shows): an absent optional CharField is cleaned to its
    empty value directly, which is what Django's cleaning of it returns, without a bound
    field and a clean of its own for each (~10% of a send's CPU for ~40 fields). No file
    fields."""

    def _clean_fields(self) -> None:
        data = self.data
        for name, field in self.fields.items():
            if (
                name not in data
                and not field.required
                and not field.disabled
                and type(field) is forms.CharField
                and not hasattr(self, f"clean_{name}")
                and self.prefix is None
            ):
                self.cleaned_data[name] = field.empty_value
                continue
            bound = self[name]
            try:
                self.cleaned_data[name] = field.clean(
                    bound.initial if field.disabled else bound.data
                )
                if hasattr(self, f"clean_{name}"):
                    self.cleaned_data[name] = getattr(self, f"clean_{name}")()
            except forms.ValidationError as exc:
                self.add_error(name, exc)


class LoginForm(AuthenticationForm):
    """Django's log-in, which also turns away an account an administrator has not approved
    (or refused), saying so."""

    def confirm_login_allowed(self, user: User) -> None:
        super().confirm_login_allowed(user)
        status = standing(user=user)
        if status == Membership.Status.PENDING:
            raise forms.ValidationError(
                "This account is awaiting approval by an administrator. You can log in once "
                "it is approved.",
                code="pending",
            )
        if status == Membership.Status.REFUSED:
            raise forms.ValidationError(
                "An administrator of this server did not approve this account.", code="refused"
            )


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


share_fields(ComposerForm)


class EditForm(forms.Form):
    """An edited message: its text, the images it keeps, a key against a double submit."""

    text = MessageTextField()
    idempotency_key = forms.UUIDField()
    attachments = UUIDListField(required=False)


share_fields(EditForm)
