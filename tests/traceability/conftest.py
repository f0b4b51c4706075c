"""Fixtures the traceability tests share: a technician and a pharmacist."""

import pytest

from tests.factories import UserFactory


@pytest.fixture
def tech():
    return UserFactory(username="tina", role="technician")


@pytest.fixture
def pharm():
    return UserFactory(username="phil", role="pharmacist")
