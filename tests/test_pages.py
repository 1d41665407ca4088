from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_answers(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_home_page_lists_what_is_loaded(client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert b"Parcels" in response.content


def test_admin_requires_a_staff_login(client, django_user_model) -> None:
    assert client.get("/admin/").status_code == 302
    user = django_user_model.objects.create_user("notary", password="a-long-password-1")
    client.force_login(user)
    assert client.get("/admin/").status_code == 302  # not staff
    user.is_staff = True
    user.save()
    assert client.get("/admin/").status_code == 200
