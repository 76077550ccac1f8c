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


def test_first_account_becomes_superuser_and_the_next_does_not(settings):
    settings.SIGNUP = "open"
    first = Client()
    response = signup(first, "admin")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert first.get("/").status_code == 200  # logged in by signing up
    bob = Client()
    response = signup(bob, "bob")
    assert response.status_code == 302
    assert bob.get("/").status_code == 200
    users = {u.username: u for u in get_user_model().objects.all()}
    assert users["admin"].is_superuser
    assert users["admin"].is_staff
    assert not users["bob"].is_superuser
    assert not users["bob"].is_staff


def test_by_default_a_new_account_awaits_approval_and_cannot_log_in(settings):
    assert settings.SIGNUP == "approval"
    first = Client()
    assert signup(first, "admin").status_code == 302  # the first account needs no approval
    assert first.get("/").status_code == 200
    carol = Client()
    response = signup(carol, "carol")
    assert response.status_code == 200
    assert "awaiting approval" in response.content.decode()
    assert carol.get("/").status_code == 302  # not signed in
    response = carol.post("/accounts/login/", {"username": "carol", "password": PASSWORD})
    assert response.status_code == 200
    assert "awaiting approval" in response.content.decode()
    assert carol.get("/").status_code == 302


def test_an_approved_account_logs_in_and_a_refused_one_is_told(settings):
    from chatapp.accounts import services

    signup(Client(), "admin")
    signup(Client(), "dan")
    signup(Client(), "eve")
    users = {u.username: u for u in get_user_model().objects.all()}
    services.person_approve(person=users["dan"])
    services.person_refuse(person=users["eve"])
    dan, eve = Client(), Client()
    assert (
        dan.post("/accounts/login/", {"username": "dan", "password": PASSWORD}).status_code == 302
    )
    assert dan.get("/").status_code == 200
    response = eve.post("/accounts/login/", {"username": "eve", "password": PASSWORD})
    assert "did not approve this account" in response.content.decode()
    assert eve.get("/").status_code == 302


def test_a_wrong_password_of_an_account_awaiting_approval_says_nothing_about_it():
    signup(Client(), "admin")
    signup(Client(), "frank")
    response = Client().post("/accounts/login/", {"username": "frank", "password": "wrong-1!"})
    assert "awaiting approval" not in response.content.decode()


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
    settings.SIGNUP = "closed"
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


# --- Log-in throttling (django-axes) ---------------------------------------------------------


def log_in(client: Client, username: str, password: str, address: str = "203.0.113.7") -> object:
    return client.post(
        "/accounts/login/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


@pytest.fixture
def account(django_user_model):
    return django_user_model.objects.create_user(username="carol", password=PASSWORD)


@pytest.mark.django_db(transaction=True)
def test_after_five_wrong_passwords_even_the_right_one_waits_and_is_told_how_long(account):
    client = Client()
    for _ in range(4):
        assert log_in(client, "carol", "wrong").status_code == 200  # the form, with its error
    assert log_in(client, "carol", "wrong").status_code == 429  # the fifth pauses log-ins
    response = log_in(client, "carol", PASSWORD)
    assert response.status_code == 429
    text = response.content.decode()
    assert "5 failed log-ins in a row" in text
    assert "Try again in 15 minutes" in text
    assert client.get("/").status_code == 302  # not logged in


@pytest.mark.django_db(transaction=True)
def test_the_account_is_throttled_whatever_address_the_guesses_come_from(account):
    for number in range(5):
        log_in(Client(), "carol", "wrong", address=f"198.51.100.{number}")
    assert log_in(Client(), "carol", PASSWORD, address="192.0.2.1").status_code == 429


@pytest.mark.django_db(transaction=True)
def test_an_address_is_throttled_whatever_accounts_it_guesses(account, django_user_model):
    django_user_model.objects.create_user(username="dave", password=PASSWORD)
    for number in range(5):
        log_in(Client(), f"nobody{number}", "wrong", address="198.51.100.9")
    assert log_in(Client(), "dave", PASSWORD, address="198.51.100.9").status_code == 429
    assert log_in(Client(), "dave", PASSWORD, address="192.0.2.2").status_code == 302


@pytest.mark.django_db(transaction=True)
def test_a_success_clears_the_count(account):
    client = Client()
    for _ in range(4):
        log_in(client, "carol", "wrong")
    assert log_in(client, "carol", PASSWORD).status_code == 302
    for _ in range(4):
        log_in(Client(), "carol", "wrong")
    assert log_in(Client(), "carol", PASSWORD).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_the_admin_log_in_is_throttled_too(django_user_model):
    django_user_model.objects.create_superuser(username="root", password=PASSWORD)
    for _ in range(5):
        Client().post(
            "/admin/login/?next=/admin/",
            {"username": "root", "password": "wrong"},
            REMOTE_ADDR="198.51.100.20",
        )
    response = Client().post(
        "/admin/login/?next=/admin/",
        {"username": "root", "password": PASSWORD},
        REMOTE_ADDR="192.0.2.3",
    )
    assert response.status_code == 429


@pytest.mark.django_db(transaction=True)
def test_a_forged_forwarded_header_does_not_escape_the_address_limit(account, settings):
    settings.HTTPS = False  # no proxy: X-Forwarded-For is the client's own words
    for number in range(5):
        Client().post(
            "/accounts/login/",
            {"username": f"nobody{number}", "password": "wrong"},
            REMOTE_ADDR="198.51.100.30",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{number}",
        )
    assert log_in(Client(), "carol", PASSWORD, address="198.51.100.30").status_code == 429
