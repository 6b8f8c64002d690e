"""sig: offline handwritten signature verification from raw images to published tables."""

__version__ = "0.1.0"
