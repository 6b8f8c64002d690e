"""sig: offline handwritten signature verification from raw images to published tables.

The Python API (docs/api.md): ``from sigcli import Verifier``. It is imported on first use,
so ``import sigcli`` (and ``sig --help``) stays free of torch.
"""

__version__ = "0.1.0"

__all__ = ["Verifier", "__version__"]


def __getattr__(name: str):
    if name == "Verifier":
        from sigcli.verify import Verifier

        return Verifier
    raise AttributeError(f"module 'sigcli' has no attribute {name!r}")
