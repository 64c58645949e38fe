"""3D views of samples: find them (local folder or URL template, the seed's names), fetch them, or render them.

```python
from occ_hf.views import GroundTruthMesh, fetch_views, render_split_views, resolve_views

urls = resolve_views(ids, SEED_VIEWS_URL)                              # id -> URL, for datasets' download manager
report = fetch_views(ids, "views/test")                                # resume, retries, image checks, 404 by id
report = render_split_views(split, GroundTruthMesh(), "views/test")    # meshes -> grey-on-black views, batched
```
"""

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
from .reconstruction import GroundTruthMesh, MeshFolder, ObjectMesh, ObjectReconstructor, load_mesh
from .render import (
    BACKENDS,
    RenderedViews,
    RenderReport,
    RenderViewsConfig,
    orbit_rotations,
    render_split_views,
    render_views,
    save_views,
)
from .verify import ViewImageError, check_image_bytes, read_view_image, verify_view_image


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
