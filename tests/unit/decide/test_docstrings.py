"""The runnable examples in the decision and definition modules' docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "personify.definitions",
    "personify.definitions.diff",
    "personify.decide.templates",
    "personify.decide.engine",
    "personify.decide.service",
    "personify.decide.views",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
