"""The public surface: each public module's ``__all__`` lists exactly its public names."""

from __future__ import annotations

import importlib
import inspect
import types

import pytest

import sarvam_async

REEXPORTING = ["sarvam_async", "sarvam_async.jobs", "sarvam_async.testing"]
"""Modules that only gather names: every public name in them is exported."""
DEFINING = ["sarvam_async.errors", "sarvam_async.models"]
"""Modules that define the names they export (and import helpers they do not)."""


def _public(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType | type(annotations))
    }


@pytest.mark.parametrize("name", REEXPORTING)
def test_all_is_every_public_name(name: str) -> None:
    module = importlib.import_module(name)
    assert sorted(module.__all__) == sorted(set(module.__all__)), "a name is listed twice"
    modules = {n for n, v in vars(module).items() if isinstance(v, types.ModuleType)}
    assert set(module.__all__) - {"__version__"} == _public(module) | (
        modules & set(module.__all__)
    )


@pytest.mark.parametrize("name", DEFINING)
def test_all_is_every_public_class_defined_there(name: str) -> None:
    module = importlib.import_module(name)
    defined = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and inspect.isclass(v) and v.__module__ == name
    }
    assert defined - {"InitiateRequest"} <= set(module.__all__)
    assert all(hasattr(module, n) for n in module.__all__)


def test_the_version_has_one_home() -> None:
    from importlib.metadata import version

    assert sarvam_async.__version__ == sarvam_async._constants.VERSION == version("sarvam-async")
    assert sarvam_async._constants.USER_AGENT.endswith("/" + sarvam_async.__version__)
