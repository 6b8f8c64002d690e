"""Model registry: every architecture is one factory registered by name.

Adding an architecture is one decorated function anywhere (a plugin, a notebook, a test)::

    @register_model("my-net")
    def my_net() -> nn.Module: ...   # 1×150×220 input, attribute ``feature_space_size``

``sig train --model my-net`` then trains it, and its checkpoints are recognised by shape.
"""

from __future__ import annotations

from sigcli.models.registry import (INPUT_SIZE, ModelFactory, available_models, create_model, register_model,
                                    registered)
from sigcli.models import signet  # noqa: F401  (registers the SigNet family)

#: The architectures sig itself provides, as registered above (plugins and tests may add more).
BUILTIN_MODELS = tuple(available_models())

__all__ = ["BUILTIN_MODELS", "INPUT_SIZE", "ModelFactory", "available_models", "create_model", "register_model",
           "registered"]
