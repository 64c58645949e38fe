"""The Jinja templates of the model and dataset cards, found wherever occ-hf is installed.

The templates live in the package (`occ_hf/model_cards/`, shipped as package data; the checkout's top-level
`model_cards/` is a link to that folder), so a wheel, an editable install and a plain checkout on `PYTHONPATH` all
read the same files through `importlib.resources`.

```python
from huggingface_hub import ModelCard, ModelCardData
from occ_hf.cards import read_card_template

card = ModelCard.from_template(ModelCardData(), template_str=read_card_template("model_card.md"), **variables)
```
"""

from importlib import resources


__all__ = ["CARD_TEMPLATES", "read_card_template"]

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
