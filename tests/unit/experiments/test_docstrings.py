"""The runnable examples in the experiments package's docstrings stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import personify.experiments

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(
        personify.experiments.__path__, prefix="personify.experiments."
    )
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
