"""The session engine (chatapp.accounts.sessions): a session reads as Django's own database
sessions read it, its verified data remembered by its signed string."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from chatapp.accounts import sessions
from chatapp.accounts.sessions import SessionStore

pytestmark = pytest.mark.django_db


def _saved(data: dict[str, Any]) -> SessionStore:
    store = SessionStore()
    store.update(data)
    store.save()
    return store


def test_a_session_reads_back_the_same_each_time_and_each_read_is_its_own_to_change() -> None:
    key = _saved({"_auth_user_id": "7", "nested": {"a": [1, 2]}}).session_key
    first = SessionStore(key).load()
    first["nested"]["a"].append(3)
    first["_auth_user_id"] = "8"
    again = SessionStore(key).load()
    assert again == {"_auth_user_id": "7", "nested": {"a": [1, 2]}}


def test_a_tampered_session_is_empty_every_time_and_never_remembered() -> None:
    data = SessionStore().encode({"_auth_user_id": "7"})
    tampered = data[:-2] + ("AA" if not data.endswith("AA") else "BB")
    for _ in range(2):
        assert SessionStore().decode(tampered) == {}
    assert not any(key[0] == tampered for key in sessions._VERIFIED)


def test_a_session_signed_with_a_key_no_longer_trusted_is_empty_though_it_was_read_before():
    signed_with = settings.SECRET_KEY
    data = SessionStore().encode({"_auth_user_id": "7"})
    assert SessionStore().decode(data) == {"_auth_user_id": "7"}
    with override_settings(SECRET_KEY="another key, the old one dropped" * 2):
        assert SessionStore().decode(data) == {}
    with override_settings(
        SECRET_KEY="another key, the old one kept" * 2,
        SECRET_KEY_FALLBACKS=[signed_with],
    ):
        assert SessionStore().decode(data) == {"_auth_user_id": "7"}
