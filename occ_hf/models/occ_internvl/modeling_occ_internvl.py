"""`OccInternVLForConditionalGeneration`: transformers' InternVL with OCC-MLLM-CoT's three-stage recognition.

This file is copied next to every saved checkpoint (`auto_map`) with the siblings it imports (the generation engine
`generation_occ_internvl.py`, the prompt style `prompts_occ_internvl.py`, ...), so it imports only torch, transformers
and those siblings.

```python
from transformers import AutoModelForImageTextToText, AutoProcessor

model = AutoModelForImageTextToText.from_pretrained("runs/tiny")      # `import occ_hf` first, or trust_remote_code
processor = AutoProcessor.from_pretrained("runs/tiny")
results = model.recognize(rgb_images, views=view_images, processor=processor)
results[0].label, results[0].clear, results[0].describe, results[0].reflect, results[0].decide
```

The stages follow the seed's `inferenceImageAcc.py`: *describe* asks the class question on the RGB image; *reflect*
asks the clarity question with the first turn as history; *decide* keeps the described class when the answer is yes,
and when it is no asks the class question again, without history, on the 3D view. The `joint` policy instead gives
the RGB image and the 3D view in one prompt, then reflects. `recognize` says what to ask of a batch, one
[`OccRecognition`] per image filled in stage by stage; `BatchedChat` (generation_occ_internvl.py) runs the
conversations batched, with left padding, each turn reusing the previous turn's KV cache.
"""

from dataclasses import asdict, dataclass, field

import torch
from transformers import AutoProcessor, InternVLForConditionalGeneration
from transformers.image_utils import is_valid_image

from .configuration_occ_internvl import DECISION_POLICIES, OccInternVLConfig
from .generation_occ_internvl import BatchedChat
from .prompts_occ_internvl import IMAGE_MARKER, PromptStyle, parse_clarity


@dataclass
class OccRecognition:
    r"""
    What [`OccInternVLForConditionalGeneration.recognize`] found for one image; `recognize` fills it in stage by stage.

    Parameters:
        describe (`list[str]`): The answers to the describe questions (one in the `code` style, three in `paper`;
            with the `joint` policy, the answer to the joint question).
        reflect (`str`): The answer to the clarity question.
        decide (`str` or `None`): The answer to the class question of the decision stage; `None` when the decision
            kept the described class, or when the view was needed but missing.
        label (`str` or `None`): The recognised class, `None` when the deciding answer names none of
            `config.class_names` or the view was missing (the seed counts both as wrong).
        describe_label (`str` or `None`): The class the describe stage named (`None` in the `paper` style).
        clear (`bool` or `None`): The parsed clarity answer (`None` when it is neither yes nor no).
        used_view (`bool`): Whether the decision asked on the 3D view.
    """

    describe: list[str] = field(default_factory=list)
    reflect: str = ""
    decide: str | None = None
    label: str | None = None
    describe_label: str | None = None
    clear: bool | None = None
    used_view: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _image_list(images, name: str, allow_none: bool = False) -> list:
    """`images` as a list, each item checked to be an image (PIL, or an array or tensor the processor takes)."""
    if is_valid_image(images) or isinstance(images, (str, bytes)):
        raise ValueError(f"{name} is one {type(images).__name__}; pass a list of PIL images, e.g. [{name[:-1]}].")
    try:
        images = list(images)
    except TypeError:
        raise ValueError(f"{name} is a {type(images).__name__}; pass a list of PIL images.") from None
    for index, image in enumerate(images):
        if not (is_valid_image(image) or (allow_none and image is None)):
            expected = "a PIL image or None (no view)" if allow_none else "a PIL image"
            raise ValueError(f"{name}[{index}] is {type(image).__name__}, expected {expected}.")
    return images


def _encode_repeated_images_once(module, args: tuple, kwargs: dict):
    """
    Forward pre-hook of the inner `InternVLModel`: when the second half of `pixel_values` repeats the first, the
    vision tower and projector run on the first half only and the features are used for both halves.

    Preference training batches are laid out so: TRL's preference collator puts the chosen sequences first and the
    rejected ones after, each on the same images, so a forward of a batch of pairs would encode every image twice
    (and the reference model twice more). The result is the same function: the features of an image do not depend on
    the batch, and the gradient of the shared features is the sum of both halves', as it would be computed twice.
    Anything else (distinct images, features given as `mm_encoder_outputs`, as `generate` passes them) is left alone.
    """
    pixel_values = kwargs.get("pixel_values")
    if pixel_values is None or kwargs.get("mm_encoder_outputs") is not None:
        return None
    half = pixel_values.shape[0] // 2
    if half == 0 or pixel_values.shape[0] % 2 or not torch.equal(pixel_values[:half], pixel_values[half:]):
        return None
    image = module.get_image_features(
        pixel_values=pixel_values[:half],
        vision_feature_layer=kwargs.get("vision_feature_layer"),
        vision_feature_select_strategy=kwargs.get("vision_feature_select_strategy"),
        return_dict=True,
    )
    image.pooler_output = torch.cat([image.pooler_output, image.pooler_output])
    return args, {**kwargs, "pixel_values": None, "mm_encoder_outputs": {"image": image}}


def _unsharded_class(model_class: type) -> type:
    """`model_class` without the wrapper classes that torch's FSDP2 (`fully_shard`) puts in front of it: the first
    class of its MRO that torch.distributed did not define (the class itself when the model is not sharded)."""
    return next(c for c in model_class.__mro__ if not c.__module__.startswith("torch.distributed."))


class OccInternVLForConditionalGeneration(InternVLForConditionalGeneration):
    r"""
    transformers' [`InternVLForConditionalGeneration`] with OCC-MLLM-CoT's recognition ([`recognize`]). The network,
    weights and forward pass are InternVL's, unchanged; saving always writes `auto_map` and this file, so the
    checkpoint also loads with `trust_remote_code=True` where occ-hf is not installed. With `config.freeze_vision`
    (`from_pretrained(path, freeze_vision=True)`) the vision tower is built frozen.
    """

    config_class = OccInternVLConfig
    config: OccInternVLConfig

    # The vision tower is frozen here rather than in the training scripts, so that TRL's own `trl sft|dpo`, which only
    # passes `model_init_kwargs` to `from_pretrained`, freezes it too. Twice, because loading replaces the parameters
    # that `__init__` froze with new ones (requires_grad=True).
    def __init__(self, config: OccInternVLConfig):
        super().__init__(config)
        self._apply_freeze_vision()
        # A hook on the inner model rather than an override of `forward`: TRL's fused LM head calls `self.model`
        # directly, and that is the path preference training takes.
        self.model.register_forward_pre_hook(_encode_repeated_images_once, with_kwargs=True)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """[`~PreTrainedModel.from_pretrained`]; `freeze_vision=True` (a config field) freezes the vision tower."""
        loaded = super().from_pretrained(*args, **kwargs)
        (loaded[0] if isinstance(loaded, tuple) else loaded)._apply_freeze_vision()  # a tuple: output_loading_info
        return loaded

    def _apply_freeze_vision(self):
        """The one rule: `config.freeze_vision` freezes the vision tower (`requires_grad=False`) and nothing else."""
        if self.config.freeze_vision:
            self.model.vision_tower.requires_grad_(False)

    def save_pretrained(self, save_directory, *args, save_original_format: bool = False, **kwargs):
        """
        [`~PreTrainedModel.save_pretrained`], also writing `auto_map` and the modeling files for remote code.

        The weights keep the live model's key names (`model.language_model.*`, `model.vision_tower.*`), which
        `from_pretrained` loads as they are: `save_original_format` defaults to `False` here. transformers' default
        renames keys back to an older layout on save, and `Trainer` resumes by loading a checkpoint's weights file
        into the live model with a non-strict `load_state_dict`, so a renamed checkpoint resumed with the language
        model left at its starting weights and a warning only (transformers issue #43701).
        """
        model_class = _unsharded_class(type(self))
        # Set on every save (not once at import): a class loaded as remote code is re-registered by the Auto class
        # that loaded it, which would otherwise leave the others out of the saved auto_map.
        model_class.register_for_auto_class("AutoModelForImageTextToText")
        type(self.config).register_for_auto_class("AutoConfig")
        module_name = model_class.__module__.rsplit(".", 1)[-1]
        self.config.auto_map = {
            **(getattr(self.config, "auto_map", None) or {}),
            "AutoModel": f"{module_name}.{model_class.__name__}",
        }
        if model_class is type(self):
            return super().save_pretrained(save_directory, *args, save_original_format=save_original_format, **kwargs)
        # Under FSDP2, `fully_shard` gives the instance a subclass that torch defines (FSDPOccInternVL...), and
        # transformers copies the file of the instance's class as the checkpoint's code: torch's `_fsdp_*.py`, named
        # in auto_map, instead of this file. The save runs as the model's own class; FSDP2's hooks are the
        # instance's, not the class's, and the weights come from the state dict accelerate gathered.
        wrapper_class, self.__class__ = self.__class__, model_class
        try:
            return super().save_pretrained(save_directory, *args, save_original_format=save_original_format, **kwargs)
        finally:
            self.__class__ = wrapper_class

    @torch.no_grad()
    def recognize(
        self,
        images: list,
        views: list | None = None,
        processor=None,
        policy: str | None = None,
        prompt_style: str | None = None,
        max_new_tokens: int | None = None,
        batch_size: int | None = None,
        reuse_cache: bool = True,
        generation_kwargs: dict | None = None,
    ) -> list[OccRecognition]:
        r"""
        Recognises the object in the hand in each image, in three stages (describe, reflect, decide), batched.

        Args:
            images (`list` of `PIL.Image.Image`):
                The RGB images.
            views (`list` of `PIL.Image.Image` or `None`, *optional*):
                The 3D-reconstructed view of each image (`None` entries for missing views). Needed by the decision
                stage for images the model finds unclear, and for every image with `policy="joint"`.
            processor (`OccInternVLProcessor`, *optional*):
                Defaults to `AutoProcessor.from_pretrained(self.name_or_path)`, loaded once.
            policy (`str`, *optional*, defaults to `config.decision_policy`):
                `"staged"` (the seed) or `"joint"` (RGB image and view in one prompt).
            prompt_style (`str`, *optional*, defaults to `config.prompt_style`):
                A key of `config.prompts`.
            max_new_tokens (`int`, *optional*, defaults to `config.max_new_tokens`):
                Tokens generated per stage.
            batch_size (`int`, *optional*):
                Images per batch (a positive integer); all at once by default.
            reuse_cache (`bool`, *optional*, defaults to `True`):
                Reuse each turn's KV cache for the next turn of the conversation.
            generation_kwargs (`dict`, *optional*):
                Passed to `generate` at every stage; greedy (`do_sample=False`, the seed's decoding) unless it says
                otherwise, e.g. `{"do_sample": True, "temperature": 0.7}` for self-consistency runs.

        Returns:
            `list[OccRecognition]`: one per image, in order.
        """
        images = _image_list(images, "images")
        views = _image_list(views, "views", allow_none=True) if views is not None else [None] * len(images)
        if len(views) != len(images):
            raise ValueError(f"Got {len(images)} images but {len(views)} views: pass one view (or None) per image.")
        for name, value in (("batch_size", batch_size), ("max_new_tokens", max_new_tokens)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}.")
        policy = policy or self.config.decision_policy
        if policy not in DECISION_POLICIES:
            raise ValueError(f"Unknown policy {policy!r}: use one of {DECISION_POLICIES}.")
        prompt_style = prompt_style or self.config.prompt_style
        if prompt_style not in self.config.prompts:
            raise ValueError(
                f"Unknown prompt style {prompt_style!r}: config.prompts has {sorted(self.config.prompts)}."
            )
        if policy == "joint" and any(view is None for view in views):
            missing = [index for index, view in enumerate(views) if view is None]
            raise ValueError(f"policy='joint' needs a view for every image; images {missing} have none.")
        style = PromptStyle.from_dict(prompt_style, self.config.prompts[prompt_style])
        processor = processor if processor is not None else self._default_processor()
        max_new_tokens = max_new_tokens if max_new_tokens is not None else self.config.max_new_tokens
        batch_size = batch_size if batch_size is not None else max(len(images), 1)
        recognize_batch = self._recognize_joint if policy == "joint" else self._recognize_staged
        results = []
        for start in range(0, len(images), batch_size):
            chat = BatchedChat(
                self,
                processor,
                max_new_tokens=max_new_tokens,
                reuse_cache=reuse_cache,
                generation_kwargs=generation_kwargs,
            )
            batch = slice(start, start + batch_size)
            results += recognize_batch(chat, style, images[batch], views[batch])
        return results

    def _default_processor(self):
        if getattr(self, "_occ_processor", None) is None:
            if not self.name_or_path:
                raise ValueError("This model was not loaded from a folder or the Hub: pass `processor=` to recognize.")
            self._occ_processor = AutoProcessor.from_pretrained(self.name_or_path)
        return self._occ_processor

    def _recognize_staged(self, chat: BatchedChat, style: PromptStyle, images: list, views: list) -> list:
        """The seed's three stages for one batch of images (`views[i]` is image `i`'s view, or `None`)."""
        class_names = self.config.class_names
        results = [OccRecognition() for _ in images]
        no_images = [[] for _ in images]

        # Describe: the describe questions in one conversation, the first on the RGB image.
        for turn, question in enumerate(style.describe):
            turn_images = [[image] * question.count(IMAGE_MARKER) if turn == 0 else [] for image in images]
            answers = chat.ask([question] * len(images), turn_images)
            for result, answer in zip(results, answers, strict=True):
                result.describe.append(answer)
        # Reflect: the clarity question, with the describe turns as history.
        answers = chat.ask([style.reflect_at_inference] * len(images), no_images)
        for result, answer in zip(results, answers, strict=True):
            result.reflect, result.clear = answer, parse_clarity(answer)
            if style.class_in_describe:
                result.describe_label = result.label = style.parse_class(result.describe[-1], class_names)

        # Decide. As the seed: only an explicit "no" sends an image to its 3D view; anything else keeps the
        # conversation, where the `paper` style still has to ask the class.
        kept = [row for row, result in enumerate(results) if result.clear is not False]
        unclear = [row for row, result in enumerate(results) if result.clear is False]
        if kept and not style.class_in_describe:
            answers = chat.select(kept).ask([style.decide_in_conversation] * len(kept), [[] for _ in kept])
            for row, answer in zip(kept, answers, strict=True):
                results[row].decide, results[row].label = answer, style.parse_class(answer, class_names)
        for row in unclear:
            results[row].label = None  # a missing view counts as wrong, as in the seed's Decision metric
        with_view = [row for row in unclear if views[row] is not None]
        if with_view:
            view_images = [[views[row]] * style.decide.count(IMAGE_MARKER) for row in with_view]
            answers = chat.new().ask([style.decide] * len(with_view), view_images)
            for row, answer in zip(with_view, answers, strict=True):
                result = results[row]
                result.decide, result.used_view, result.label = answer, True, style.parse_class(answer, class_names)
        return results

    def _recognize_joint(self, chat: BatchedChat, style: PromptStyle, images: list, views: list) -> list:
        """The joint question (RGB image and 3D view in one prompt), then the clarity question, for one batch."""
        if style.joint.count(IMAGE_MARKER) != 2:
            raise ValueError(f"config.prompts[{style.name!r}]['joint'] needs two {IMAGE_MARKER} markers (RGB, view).")
        answers = chat.ask(
            [style.joint] * len(images), [[image, view] for image, view in zip(images, views, strict=True)]
        )
        reflect = chat.ask([style.reflect_at_inference] * len(images), [[] for _ in images])
        results = []
        for answer, clarity in zip(answers, reflect, strict=True):
            label = style.parse_class(answer, self.config.class_names)
            results.append(
                OccRecognition(
                    describe=[answer],
                    reflect=clarity,
                    label=label,
                    describe_label=label,
                    clear=parse_clarity(clarity),
                    used_view=True,
                )
            )
        return results


__all__ = ["OccInternVLForConditionalGeneration", "OccRecognition"]
