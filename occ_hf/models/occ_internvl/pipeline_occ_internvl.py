"""The `occluded-object-recognition` pipeline: images (and optional 3D views) in, the three stages and the label out.

`import occ_hf` registers it with transformers' `PIPELINE_REGISTRY`.

```python
import occ_hf
from transformers import pipeline

recognizer = pipeline("occluded-object-recognition", model="runs/tiny")
recognizer("rgb.png", view="view.png")
# {"label": "bottle", "clear": False, "used_view": True, "describe": [...], "reflect": "No.", "decide": "..."}
recognizer([{"image": "a.png", "view": "a_view.png"}, "b.png"], policy="staged", batch_size=8)
```
"""

from transformers import Pipeline
from transformers.image_utils import load_image


__all__ = ["OccludedObjectRecognitionPipeline"]


class OccludedObjectRecognitionPipeline(Pipeline):
    r"""
    Runs [`OccInternVLForConditionalGeneration.recognize`] on images given as paths, URLs or PIL images.

    Inputs: one image, a dict `{"image": ..., "view": ...}`, or a list of either; `view=` gives the view of a single
    image. A list is recognised in batches of `batch_size` (all at once by default), with left padding. Call
    parameters: `policy`, `prompt_style`, `max_new_tokens` (see `recognize`). Each result is a dict with `label`,
    `clear`, `used_view`, `describe`, `reflect`, `decide` and `describe_label`.
    """

    _load_processor = True
    _load_image_processor = False
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_video_processor = False

    def _sanitize_parameters(self, policy=None, prompt_style=None, max_new_tokens=None, batch_size=None, **kwargs):
        if kwargs:
            raise ValueError(
                f"Unknown arguments {sorted(kwargs)}: use policy, prompt_style, max_new_tokens, batch_size."
            )
        forward = {"policy": policy, "prompt_style": prompt_style, "max_new_tokens": max_new_tokens}
        return (
            {},
            {**{key: value for key, value in forward.items() if value is not None}, "batch_size": batch_size},
            {},
        )

    def __call__(self, inputs, view=None, **kwargs):
        single = not isinstance(inputs, (list, tuple))
        items = [inputs] if single else list(inputs)
        if view is not None:
            if not single:
                raise ValueError("view= is for a single image; give a list of {'image': ..., 'view': ...} instead.")
            items = [{"image": inputs, "view": view}]
        items = [item if isinstance(item, dict) else {"image": item} for item in items]
        for index, item in enumerate(items):
            if "image" not in item:
                raise ValueError(f"Input {index} has no 'image' key: pass {{'image': ..., 'view': ...}}.")
        _, forward_params, _ = self._sanitize_parameters(**kwargs)
        results = self.postprocess(self.forward(self.preprocess(items), **forward_params))
        return results[0] if single else results

    def preprocess(self, items: list[dict]) -> dict:
        images = [load_image(item["image"]) for item in items]
        views = [load_image(item["view"]) if item.get("view") is not None else None for item in items]
        return {"images": images, "views": views}

    def _forward(self, model_inputs: dict, batch_size=None, **recognize_kwargs) -> list:
        return self.model.recognize(
            model_inputs["images"],
            views=model_inputs["views"],
            processor=self.processor,
            batch_size=batch_size,
            **recognize_kwargs,
        )

    def postprocess(self, model_outputs: list) -> list[dict]:
        return [recognition.to_dict() for recognition in model_outputs]
