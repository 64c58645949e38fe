"""3D views of samples: find them (local folder or URL template, the seed's names), fetch them, or render them.

```python
from occ_hf.views import GroundTruthMesh, fetch_views, render_split_views, resolve_views

urls = resolve_views(ids, SEED_VIEWS_URL)                              # id -> URL, for datasets' download manager
report = fetch_views(ids, "views/test")                                # resume, retries, image checks, 404 by id
report = render_split_views(split, GroundTruthMesh(), "views/test")    # meshes -> grey-on-black views, batched
```

The renderer and the mesh sources (`render`, `reconstruction`: torch, numpy) are imported on first use of one of
their names, so that what only needs the views' names and files (the dataset builder) does not pay for torch.
"""

import importlib

from .fetch import FetchReport, FetchViewsConfig, fetch_views
from .naming import (
    SEED_VIEWS_URL,
    VIEW_NAME_TEMPLATE,
    download_views,
    fill_template,
    find_views,
    orbit_view_name,
    resolve_views,
    view_name,
    view_name_from_list_row,
)
from .verify import ViewImageError, check_image_bytes, read_view_image, verify_view_image


# Names of the modules that import torch or numpy, imported on first use (module `__getattr__`).
_LAZY_NAMES = {
    "BACKENDS": "render",
    "GroundTruthMesh": "reconstruction",
    "MeshFolder": "reconstruction",
    "ObjectMesh": "reconstruction",
    "ObjectReconstructor": "reconstruction",
    "RenderReport": "render",
    "RenderViewsConfig": "render",
    "RenderedViews": "render",
    "load_mesh": "reconstruction",
    "orbit_rotations": "render",
    "render_split_views": "render",
    "render_views": "render",
    "save_views": "render",
}


__all__ = [
    "BACKENDS",
    "FetchReport",
    "FetchViewsConfig",
    "GroundTruthMesh",
    "MeshFolder",
    "ObjectMesh",
    "ObjectReconstructor",
    "RenderReport",
    "RenderViewsConfig",
    "RenderedViews",
    "SEED_VIEWS_URL",
    "VIEW_NAME_TEMPLATE",
    "ViewImageError",
    "check_image_bytes",
    "download_views",
    "fetch_views",
    "fill_template",
    "find_views",
    "load_mesh",
    "orbit_rotations",
    "orbit_view_name",
    "read_view_image",
    "render_split_views",
    "render_views",
    "resolve_views",
    "save_views",
    "verify_view_image",
    "view_name",
    "view_name_from_list_row",
]


def __getattr__(name: str):
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
