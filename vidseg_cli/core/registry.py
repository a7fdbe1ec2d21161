"""A small name -> entry registry (STYLE.md: refuse duplicates, say where a name was looked up).

Models register their class (or any callable taking plain keyword arguments) under a name;
`MODELS.build(name, **config)` builds one and remembers the name and the config on the
module, so a checkpoint can record them (models/checkpoint.py) and rebuild it later. The
stage catalogue (api/catalogue.py) registers plain records and only looks them up.
Standard library only, so the command-line help path can import it.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any


class RegistryError(KeyError):
    """A name that is missing from, or already in, a registry. `str()` is one line."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Registry:
    """Maps names to builders; refuses a second builder under a taken name."""

    def __init__(self, name: str):
        self.name = name  # what the registry holds, named in its errors ("models")
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, name: str, builder: Callable[..., Any] | None = None):
        """Register `builder` under `name`; without `builder`, return a decorator."""

        def add(b: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._builders:
                raise RegistryError(
                    f"registry '{self.name}': name '{name}' is already taken by "
                    f"{_describe(self._builders[name])}"
                )
            self._builders[name] = b
            return b

        return add if builder is None else add(builder)

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._builders[name]
        except KeyError:
            raise RegistryError(
                f"registry '{self.name}' has no '{name}'; known: {', '.join(sorted(self._builders))}"
            ) from None

    def build(self, name: str, **config: Any) -> Any:
        """Build `name` with `config` (plain JSON-able keyword arguments).

        The object gets `model_name` and `model_config` attributes so that whoever saves it
        knows how to rebuild it; `model_config` is the fully resolved configuration (the
        builder's defaults filled in, as JSON data), so a checkpoint records every setting.
        """
        builder = self.get(name)
        resolved = resolve_config(builder, config, f"registry '{self.name}': '{name}'")
        obj = builder(**config)
        obj.model_name = name
        obj.model_config = resolved
        return obj

    def names(self) -> list[str]:
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._builders)


def _describe(b: Callable[..., Any]) -> str:
    return f"{getattr(b, '__module__', '?')}.{getattr(b, '__qualname__', repr(b))}"


def resolve_config(builder: Callable[..., Any], config: dict[str, Any], where: str) -> dict[str, Any]:
    """`config` with the builder's keyword defaults filled in, as JSON data (tuples become
    lists). Unknown keys raise TypeError; values that are not JSON data raise ValueError."""
    sig = inspect.signature(builder)
    try:
        bound = sig.bind(**config)
    except TypeError as e:
        raise TypeError(f"{where}: {e}") from None
    bound.apply_defaults()
    resolved: dict[str, Any] = {}
    for key, value in bound.arguments.items():
        if sig.parameters[key].kind is inspect.Parameter.VAR_KEYWORD:
            resolved.update(value)
        elif sig.parameters[key].kind is not inspect.Parameter.VAR_POSITIONAL:
            resolved[key] = value
    try:
        return json.loads(json.dumps(resolved, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: config is not plain JSON data: {e}") from None
