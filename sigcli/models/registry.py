"""The model registry: architecture name → factory of a freshly initialised feature extractor.

Kept apart from the architectures themselves so that they (and plugins) can register without
importing the package that lists them.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from torch import nn

from sigcli.errors import InputError

# Every network reads a centre or random crop of this size (H, W) from the 170×242 images.
INPUT_SIZE = (150, 220)

ModelFactory = Callable[[], nn.Module]
_REGISTRY: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register ``factory`` under ``name``; a second registration of a name replaces the first."""

    def decorator(factory: ModelFactory) -> ModelFactory:
        _REGISTRY[name] = factory
        return factory

    return decorator


@contextmanager
def registered(name: str, factory: ModelFactory) -> Iterator[str]:
    """``factory`` registered as ``name`` for the block only (tests, notebooks); whatever ``name``
    meant before comes back afterwards."""
    previous = _REGISTRY.get(name)
    _REGISTRY[name] = factory
    try:
        yield name
    finally:
        if previous is None:
            _REGISTRY.pop(name, None)
        else:
            _REGISTRY[name] = previous


def available_models() -> list[str]:
    """Registered architecture names, in registration order."""
    return list(_REGISTRY)


def create_model(name: str) -> nn.Module:
    """A new, randomly initialised feature extractor of architecture ``name``."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown model '{name}'", f"available: {', '.join(available_models())}") from None
    return factory()
