"""Each person's own API keys (chatapp/credentials): encrypted at rest, rotatable, shown back
only as their last four characters, and the routes they open."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from chatapp.core.errors import ServiceError
from chatapp.credentials import crypto, selectors, services
from chatapp.credentials.models import PersonKey
from chatapp.providers import catalog

pytestmark = pytest.mark.django_db

KEY = "AIzaSy-person-key-0123456789wxyz"


def test_a_saved_key_is_stored_encrypted_and_only_its_last_four_characters_in_clear(user):
    services.key_save(owner_id=user.pk, route="gemini", api_key=f"  {KEY}\n")
    row = PersonKey.objects.get(owner=user, route="gemini")
    assert KEY.encode() not in bytes(row.secret)
    assert KEY not in str(row)
    assert KEY not in repr(row)
    assert row.last_four == "wxyz"
    assert selectors.own_key(owner_id=user.pk, route="gemini").api_key == KEY


def test_saving_again_replaces_the_key_and_clears_its_rejection(user):
    first = services.key_save(owner_id=user.pk, route="gemini", api_key=KEY)
    services.key_mark_rejected(
        owner_id=user.pk, route="gemini", saved_at=first.updated_at, message="bad", api_key=KEY
    )
    assert PersonKey.objects.get(pk=first.pk).rejected_at is not None
    services.key_save(owner_id=user.pk, route="gemini", api_key="AIzaSy-another-key-9876")
    row = PersonKey.objects.get(pk=first.pk)
    assert (row.rejected_at, row.last_four) == (None, "9876")
    assert PersonKey.objects.filter(owner=user).count() == 1


def test_a_rejection_does_not_mark_a_key_replaced_after_the_turn_began(user):
    first = services.key_save(owner_id=user.pk, route="gemini", api_key=KEY)
    services.key_save(owner_id=user.pk, route="gemini", api_key="AIzaSy-another-key-9876")
    services.key_mark_rejected(
        owner_id=user.pk, route="gemini", saved_at=first.updated_at, message="bad", api_key=KEY
    )
    assert PersonKey.objects.get(owner=user).rejected_at is None


def test_a_rejection_message_never_holds_the_key(user):
    key = services.key_save(owner_id=user.pk, route="gemini", api_key=KEY)
    services.key_mark_rejected(
        owner_id=user.pk,
        route="gemini",
        saved_at=key.updated_at,
        message=f"API key not valid: {KEY}",
        api_key=KEY,
    )
    assert PersonKey.objects.get(owner=user).rejected_message == "API key not valid: [redacted]"


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ("", "Paste your Google API key first."),
        ("   ", "Paste your Google API key first."),
        ("short", "a key is 8 to 512 characters long, and this one is 5."),
        ("x" * 513, "a key is 8 to 512 characters long, and this one is 513."),
        ("AIza key with spaces", "no spaces, line breaks"),
        ("AIzaSy-abc\r\nX-Evil: 1", "no spaces, line breaks"),
        ("AIzaSy-clé-0123456", "printable ASCII"),
    ],
)
def test_a_key_that_cannot_be_one_is_refused_with_the_rule_it_breaks(user, raw, said):
    with pytest.raises(ServiceError) as caught:
        services.key_save(owner_id=user.pk, route="gemini", api_key=raw)
    assert said in caught.value.message
    assert not PersonKey.objects.exists()


@pytest.mark.parametrize("route", ["demo", "chatgpt", "nope", ""])
def test_only_the_real_upstreams_take_a_key(user, route):
    with pytest.raises(ServiceError, match="no such route"):
        services.key_save(owner_id=user.pk, route=route, api_key=KEY)


def test_rotation_re_encrypts_every_key_with_the_first_encryption_key(user, other_user, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CHAT_KEY_ENCRYPTION_KEYS = [old]
    services.key_save(owner_id=user.pk, route="gemini", api_key=KEY)
    services.key_save(owner_id=other_user.pk, route="aimlapi", api_key="sk-other-person-key-42")

    settings.CHAT_KEY_ENCRYPTION_KEYS = [new, old]  # the new key first; the old still opens
    assert selectors.own_key(owner_id=user.pk, route="gemini").api_key == KEY
    out = io.StringIO()
    call_command("rotate_api_keys", stdout=out)
    assert "Re-encrypted 2 key(s)" in out.getvalue()

    settings.CHAT_KEY_ENCRYPTION_KEYS = [new]  # the old key removed: every key still opens
    assert selectors.own_key(owner_id=user.pk, route="gemini").api_key == KEY
    assert selectors.own_key(owner_id=other_user.pk, route="aimlapi").api_key == (
        "sk-other-person-key-42"
    )


def test_a_key_no_configured_encryption_key_opens_is_unreadable_not_an_error(user, settings):
    settings.CHAT_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    services.key_save(owner_id=user.pk, route="gemini", api_key=KEY)
    settings.CHAT_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert selectors.own_key(owner_id=user.pk, route="gemini") is None
    [row] = [r for r in selectors.key_rows(owner_id=user.pk) if r.route == "gemini"]
    assert row.unreadable
    assert row.last_four == "wxyz"
    out = io.StringIO()
    call_command("rotate_api_keys", stdout=out)
    assert "1 key(s) could not be opened" in out.getvalue()


def test_without_configured_keys_one_is_generated_once_apart_from_the_secret_key(
    user, settings, tmp_path
):
    settings.CHAT_KEY_ENCRYPTION_KEYS = []
    settings.VAR_DIR = tmp_path
    services.key_save(owner_id=user.pk, route="gemini", api_key=KEY)
    path = crypto.local_key_path()
    assert path.stat().st_mode & 0o777 == 0o600
    generated = path.read_text()
    settings.SECRET_KEY = "another secret key"  # a changed secret key opens nothing new...
    assert selectors.own_key(owner_id=user.pk, route="gemini").api_key == KEY  # ...or less
    assert path.read_text() == generated
    # Listing the generated key last when the variable is set keeps every stored key readable.
    settings.CHAT_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), generated]
    assert selectors.own_key(owner_id=user.pk, route="gemini").api_key == KEY


def test_an_encryption_key_that_is_not_a_fernet_key_is_a_configuration_error(settings):
    settings.CHAT_KEY_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="CHAT_KEY_ENCRYPTION_KEYS must be Fernet keys"):
        crypto.encrypt("x")


def test_a_persons_routes_are_the_servers_and_those_they_hold_a_key_for(user, other_user, aimlapi):
    services.key_save(owner_id=user.pk, route="segmind", api_key="sg-person-key-1234")
    mine, theirs = selectors.routes_for(user.pk), selectors.routes_for(other_user.pk)
    assert list(mine) == ["aimlapi", "segmind"]
    assert list(theirs) == ["aimlapi"]
    assert catalog.get_model_by_key("segmind:gemini-2.5-flash", mine) is not None
    assert catalog.get_model_by_key("segmind:gemini-2.5-flash", theirs) is None
    assert catalog.get_model_by_key("segmind:gemini-2.5-flash") is None  # not the server's


def test_the_demo_is_offered_only_while_it_is_a_persons_one_route(user, other_user, settings):
    settings.PROVIDERS = {"demo": {"BACKEND": "chatapp.providers.demo.DemoProvider"}}
    services.key_save(owner_id=user.pk, route="gemini", api_key=KEY)
    assert list(selectors.routes_for(user.pk)) == ["gemini"]
    assert "demo" not in selectors.routes_for(user.pk)
    assert list(selectors.routes_for(other_user.pk)) == ["demo"]
    assert catalog.default_model(selectors.routes_for(user.pk)).route == "gemini"


def test_a_server_route_is_answered_without_reading_the_persons_keys(
    user, aimlapi, django_assert_num_queries
):
    routes = selectors.routes_for(user.pk)
    with django_assert_num_queries(0):
        assert "aimlapi" in routes
        assert catalog.get_model_by_key("aimlapi:google/gemini-2.5-flash", routes) is not None
