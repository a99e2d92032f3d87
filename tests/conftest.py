"""Shared fixtures for the kit's own tests."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, seeded generator per test, so tests are independent and repeatable."""
    return np.random.default_rng(231)
