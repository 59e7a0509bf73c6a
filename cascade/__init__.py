"""cascade: ilastik's Autocontext (cascaded pixel classification) and headless mode on Dask."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
