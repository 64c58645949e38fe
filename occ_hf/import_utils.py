"""Checks for optional dependencies (the `render` and `flash` extras), without importing them.

Heavy or GPU-only packages are never imported at module level; code that can use one asks here first and falls
back (or raises a clear error naming the extra to install).
"""

import importlib.metadata
import importlib.util


__all__ = ["is_flash_attn_available", "is_pyrender_available", "is_pytorch3d_available", "package_version"]


def package_version(name: str) -> str | None:
    """Installed version of distribution `name`, or `None` when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def is_pytorch3d_available() -> bool:
    """Whether pytorch3d (extra `render`, the field's standard mesh renderer) can be imported."""
    return importlib.util.find_spec("pytorch3d") is not None


def is_pyrender_available() -> bool:
    """Whether pyrender (extra `gl`, an OpenGL backend of the 3D views; headless it needs libEGL) is installed."""
    return importlib.util.find_spec("pyrender") is not None


def is_flash_attn_available() -> bool:
    """Whether flash-attn (extra `flash`) is installed; it also needs a CUDA device to be used."""
    return importlib.util.find_spec("flash_attn") is not None
