"""The Jinja templates of the model and dataset cards, found wherever occ-hf is installed.

The templates live in the package (`occ_hf/model_cards/`, shipped as package data; the checkout's top-level
`model_cards/` is a link to that folder), so a wheel, an editable install and a plain checkout on `PYTHONPATH` all
read the same files through `importlib.resources`.

```python
from huggingface_hub import ModelCard, ModelCardData
from occ_hf.cards import read_card_template

card = ModelCard.from_template(ModelCardData(), template_str=read_card_template("model_card.md"), **variables)
```

The cards name occ-hf and link it only to the project's own address, `project_url()`: the first of
`[project.urls]` in `pyproject.toml`, read from the installed package's metadata. The project has none today, so
the cards link to nothing that does not exist.
"""

from importlib import metadata, resources


__all__ = ["CARD_TEMPLATES", "project_url", "read_card_template"]

CARD_TEMPLATES = ("dataset_card.md", "model_card.md")


def read_card_template(name: str) -> str:
    """
    The text of a card template shipped in `occ_hf/model_cards/`.

    Args:
        name (`str`): One of `CARD_TEMPLATES`.

    Returns:
        `str`: the template's Jinja text.
    """
    if name not in CARD_TEMPLATES:
        raise ValueError(f"{name!r} is not an occ-hf card template; the templates are {list(CARD_TEMPLATES)}.")
    template = resources.files(__package__).joinpath("model_cards", name)
    if not template.is_file():
        # A wheel built without the package data (e.g. by an older pyproject.toml) lacks the folder.
        raise FileNotFoundError(
            f"{template}: card template not found. occ_hf/model_cards/*.md ships as package data "
            "([tool.setuptools.package-data] in pyproject.toml): reinstall occ-hf from a current checkout or wheel."
        )
    return template.read_text(encoding="utf-8")


def project_url() -> str | None:
    """
    The project's own address for the cards to link to: the first entry of `[project.urls]` in `pyproject.toml`, as
    the installed occ-hf's metadata holds it (`Project-URL: Label, https://...`).

    Returns:
        `str` or `None`: the URL, or `None` when occ-hf declares none or is not installed (a checkout on
        `PYTHONPATH` only).
    """
    try:
        entries = metadata.metadata("occ-hf").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    return entries[0].split(",", 1)[-1].strip() if entries else None
