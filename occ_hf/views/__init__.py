"""3D views of samples: find them (local folder or URL template, the seed's names), fetch them, or render them.

```python
from occ_hf.views import GroundTruthMesh, fetch_views, render_split_views, resolve_views

urls = resolve_views(ids, SEED_VIEWS_URL)                              # id -> URL, for datasets' download manager
report = fetch_views(ids, "views/test")                                # resume, retries, image checks, 404 by id
report = render_split_views(split, GroundTruthMesh(), "views/test")    # meshes -> grey-on-black views, batched
```

Names are imported on first use, so that the modules that only need the views' names (`naming`, e.g. the dataset
builder) do not import the renderer and torch.
"""

import importlib


_NAME_TO_MODULE = {
    "BACKENDS": "render",
    "FetchReport": "fetch",
    "FetchViewsConfig": "fetch",
    "GroundTruthMesh": "reconstruction",
    "MeshFolder": "reconstruction",
    "ObjectMesh": "reconstruction",
    "ObjectReconstructor": "reconstruction",
    "RenderReport": "render",
    "RenderViewsConfig": "render",
    "RenderedViews": "render",
    "SEED_VIEWS_URL": "naming",
    "VIEW_NAME_TEMPLATE": "naming",
    "ViewImageError": "verify",
    "check_image_bytes": "verify",
    "download_views": "naming",
    "fetch_views": "fetch",
    "fill_template": "naming",
    "find_views": "naming",
    "load_mesh": "reconstruction",
    "orbit_rotations": "render",
    "orbit_view_name": "naming",
    "read_view_image": "verify",
    "render_split_views": "render",
    "render_views": "render",
    "resolve_views": "naming",
    "save_views": "render",
    "verify_view_image": "verify",
    "view_name": "naming",
    "view_name_from_list_row": "naming",
}

__all__ = sorted(_NAME_TO_MODULE)


def __getattr__(name: str):
    if name not in _NAME_TO_MODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_NAME_TO_MODULE[name]}", __name__), name)
