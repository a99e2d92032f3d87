"""Shared fixtures for the kit's own tests."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, seeded generator per test, so tests are independent and repeatable."""
    return np.random.default_rng(231)


def pytest_collection_modifyitems(items):
    """tests/test_book.py runs last: it builds the book from the notebooks that
    tests/test_notebooks.py has just executed, instead of executing them again."""
    items.sort(key=lambda item: item.path.name == "test_book.py")  # stable: others keep order
