"""The user's own code named in a study YAML as `"module:attribute"` (a model factory, an
objective): found beside the YAML or on PYTHONPATH, imported, and shipped to every Ray node."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from objectives.errors import InvalidConfig


def split_spec(spec: Any, key: str) -> tuple[str, str]:
    """`"my_nets:build"` -> ("my_nets", "build"); InvalidConfig naming `key` otherwise."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise InvalidConfig(key, f'must be "module:function" (e.g. "my_nets:build"), got {spec!r}')
    module, attribute = spec.split(":")
    return module, attribute


def add_code_dir(code_dir: str | Path | None) -> None:
    """Put the study YAML's folder on this process's import path (first), where its modules live."""
    if code_dir is not None and str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))


def import_module(module: str, key: str, code_dir: str | Path | None = None) -> ModuleType:
    add_code_dir(code_dir)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module.split(".")[0] and err.name != module:
            raise InvalidConfig(key, f"module {module!r} imports {err.name!r}, which is not installed: {err}") from None
        where = f"beside the study YAML ({code_dir}) or on PYTHONPATH" if code_dir else "on PYTHONPATH"
        raise InvalidConfig(key, f"cannot import module {module!r}: put {module.split('.')[0]}.py {where}") from None
    except Exception as err:  # the user's module itself fails while being imported
        raise InvalidConfig(key, f"importing module {module!r} failed: {type(err).__name__}: {err}") from None


def load_callable(spec: str, key: str, code_dir: str | Path | None = None) -> Callable[..., Any]:
    """The function `spec` names, imported; InvalidConfig naming `key` if it is not there."""
    module_name, attribute = split_spec(spec, key)
    module = import_module(module_name, key, code_dir)
    function = getattr(module, attribute, None)
    if not callable(function):
        found = "not callable" if function is not None else "not defined there"
        raise InvalidConfig(key, f"{attribute!r} in module {module_name!r} ({module.__file__}) is {found}")
    return function


def import_problems(specs: dict[str, str]) -> list[str]:
    """Run on a node: `key: message` for each spec (key -> "module:function") it cannot import."""
    problems = []
    for key, spec in specs.items():
        try:
            load_callable(spec, key)
        except InvalidConfig as err:
            problems.append(f"{err.key}: {err.message}")
    return problems


def shippable(specs: Iterable[str], code_dir: str | Path | None) -> list[str]:
    """The files or package folders of the modules `specs` name that live outside installed
    packages: what Ray's runtime environment (`py_modules`) must copy to every node."""
    paths: list[str] = []
    for spec in specs:
        top = split_spec(spec, "")[0].split(".")[0]
        module = import_module(top, "", code_dir)
        path = Path(module.__path__[0]) if hasattr(module, "__path__") else Path(module.__file__ or "")
        if "site-packages" not in path.parts and "dist-packages" not in path.parts and str(path) not in paths:
            paths.append(str(path))
    return paths
