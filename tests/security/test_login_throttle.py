"""Login throttling (django-axes): wrong passwords lock one username from one address
out of the dashboard's and the admin's login forms, even for the right password."""

from __future__ import annotations

import pytest
from axes.utils import reset
from django.contrib.auth import get_user_model
from django.test import Client


@pytest.fixture(autouse=True)
def fresh_attempts(owner):
    reset(username=owner.username, ip="127.0.0.1")
    yield
    reset(username=owner.username, ip="127.0.0.1")


def attempt(client: Client, url: str, username: str, password: str):
    return client.post(url, {"username": username, "password": password})


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_twenty_wrong_passwords_then_the_right_one_is_refused(owner, url):
    if url.startswith("/admin/"):
        get_user_model().objects.filter(pk=owner.pk).update(is_staff=True, is_superuser=True)
    client = Client()
    for _ in range(20):
        assert attempt(client, url, owner.username, "wrong").status_code in (200, 429)
    response = attempt(client, url, owner.username, "pw-" + owner.username)
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # another address is not locked out (username + address)
    elsewhere = Client(REMOTE_ADDR="10.0.0.9")
    assert attempt(elsewhere, url, owner.username, "pw-" + owner.username).status_code == 302
    reset(username=owner.username, ip="10.0.0.9")


def test_a_successful_login_clears_the_count(owner, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, "/accounts/login/", owner.username, "wrong").status_code == 200
    assert attempt(client, "/accounts/login/", owner.username, "pw-" + owner.username).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, "/accounts/login/", owner.username, "wrong").status_code == 200
    assert attempt(client, "/accounts/login/", owner.username, "pw-" + owner.username).status_code == 302
