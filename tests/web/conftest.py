"""Notaries of two offices, logged in through Django's test client."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from valuation.models import Membership, Office

PASSWORD = "Notaris-2026-veilig"  # passes Django's validators


def notary(name: str, office: Office) -> User:
    user = User.objects.create_user(name, password=PASSWORD, first_name=name.title())
    Membership.objects.create(user=user, office=office)
    return user


@pytest.fixture
def offices(db: Any) -> tuple[Office, Office]:
    return Office.objects.create(name="Notaris Peeters"), Office.objects.create(name="Notaire Dubois")


@pytest.fixture
def client_a(offices: tuple[Office, Office], models_in: Any, demo_model: Any) -> Client:
    client = Client()
    client.force_login(notary("anna", offices[0]))
    return client


@pytest.fixture
def client_b(offices: tuple[Office, Office], models_in: Any, demo_model: Any) -> Client:
    client = Client()
    client.force_login(notary("bernard", offices[1]))
    return client
