"""Every public name of every module is in its __all__ (httpx's test_exported_members)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import aggregator

MODULES = sorted(
    m.name
    for m in pkgutil.iter_modules(aggregator.__path__, "aggregator.")
    if m.name != "aggregator.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_complete_and_exists(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    for member in exported:
        assert hasattr(module, member), f"{name}.__all__ names missing {member}"
    public = {
        key
        for key, value in vars(module).items()
        if not key.startswith("_")
        and getattr(value, "__module__", None) == name
        and (callable(value) or isinstance(value, type))
    }
    assert public <= set(exported), f"{name}: not in __all__: {sorted(public - set(exported))}"
