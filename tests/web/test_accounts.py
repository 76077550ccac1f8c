"""Accounts: signup with Django's standard fields, first account is superuser, signup can be
closed, everything else needs a login."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-Horse-42!"


def signup(client: Client, username: str) -> object:
    return client.post(
        "/accounts/signup/",
        {"username": username, "password1": PASSWORD, "password2": PASSWORD},
    )


def test_first_account_becomes_superuser_and_the_next_does_not():
    first = Client()
    response = signup(first, "admin")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert first.get("/").status_code == 200  # logged in by signing up
    response = signup(Client(), "bob")
    assert response.status_code == 302
    users = {u.username: u for u in get_user_model().objects.all()}
    assert users["admin"].is_superuser
    assert users["admin"].is_staff
    assert not users["bob"].is_superuser
    assert not users["bob"].is_staff


def test_signup_form_has_the_standard_fields():
    html = Client().get("/accounts/signup/").content.decode()
    for name in ("username", "password1", "password2"):
        assert f'name="{name}"' in html


def test_mismatched_passwords_are_refused_with_a_message():
    response = Client().post(
        "/accounts/signup/",
        {"username": "carol", "password1": PASSWORD, "password2": PASSWORD + "x"},
    )
    assert response.status_code == 200
    assert "didn’t match" in response.content.decode()
    assert not get_user_model().objects.exists()


def test_signup_can_be_closed(settings):
    settings.ALLOW_SIGNUP = False
    response = signup(Client(), "dave")
    assert response.status_code == 403
    assert "Sign-up is closed" in response.content.decode()
    assert not get_user_model().objects.exists()
    assert "Sign up" not in Client().get("/accounts/login/").content.decode()


def test_login_and_logout():
    get_user_model().objects.create_user(username="erin", password=PASSWORD)
    client = Client()
    response = client.post("/accounts/login/", {"username": "erin", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302
