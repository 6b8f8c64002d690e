"""Model registry: every architecture is one factory registered by name.

Adding an architecture is one decorated function anywhere (a plugin, a notebook, a test)::

    @register_model("my-net")
    def my_net() -> nn.Module: ...   # 1×150×220 input, attribute ``feature_space_size``

``sig train --model my-net`` then trains it, and its checkpoints are recognised by shape.
"""

from __future__ import annotations

from typing import Callable

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


from sigcli.models import signet  # noqa: E402,F401  (registers the SigNet family)
