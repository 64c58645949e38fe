"""The models of occ-hf, registered with transformers' Auto classes and pipeline registry when `occ_hf` is imported.

```python
import occ_hf                                    # registers, lazily
from transformers import AutoModelForImageTextToText, AutoProcessor, pipeline

model = AutoModelForImageTextToText.from_pretrained("runs/tiny")       # also AutoModel, AutoConfig
recognizer = pipeline("occluded-object-recognition", model="runs/tiny")
```

Registration waits for the transformers module that needs it (`call_when_imported`): `AutoConfig` when
`configuration_auto` is imported, `AutoModel` and `AutoModelForImageTextToText` with `modeling_auto`, `AutoProcessor`
with `processing_auto`, the pipeline with `transformers.pipelines`. So `import occ_hf` imports neither torch nor
transformers, and each registration costs only the import of our class on top of what the caller already pays.
`AutoModel` maps to the model with its LM head (as the original InternVL2 checkpoints' `auto_map` does), so that
`AutoModel.from_pretrained(...).recognize(...)` works.
"""

from ..import_hooks import call_when_imported


__all__ = ["PIPELINE_TASK", "register_auto_classes_lazily"]

PIPELINE_TASK = "occluded-object-recognition"
MODEL_TYPE = "occ_internvl"


def _register_config(configuration_auto) -> None:
    from .occ_internvl.configuration_occ_internvl import OccInternVLConfig

    configuration_auto.AutoConfig.register(MODEL_TYPE, OccInternVLConfig, exist_ok=True)


def _register_models(modeling_auto) -> None:
    from .occ_internvl.configuration_occ_internvl import OccInternVLConfig
    from .occ_internvl.modeling_occ_internvl import OccInternVLForConditionalGeneration

    for auto_class in (modeling_auto.AutoModel, modeling_auto.AutoModelForImageTextToText):
        auto_class.register(OccInternVLConfig, OccInternVLForConditionalGeneration, exist_ok=True)


def _register_processor(processing_auto) -> None:
    from .occ_internvl.configuration_occ_internvl import OccInternVLConfig
    from .occ_internvl.processing_occ_internvl import OccInternVLProcessor

    processing_auto.AutoProcessor.register(OccInternVLConfig, OccInternVLProcessor, exist_ok=True)


def _register_pipeline(pipelines) -> None:
    from transformers import AutoModelForImageTextToText

    from .occ_internvl.pipeline_occ_internvl import OccludedObjectRecognitionPipeline

    pipelines.PIPELINE_REGISTRY.register_pipeline(
        PIPELINE_TASK,
        pipeline_class=OccludedObjectRecognitionPipeline,
        pt_model=AutoModelForImageTextToText,
        type="multimodal",
    )


def register_auto_classes_lazily() -> None:
    """Registers OccInternVL with the Auto classes and the pipeline, each as soon as transformers provides it."""
    call_when_imported("transformers.models.auto.configuration_auto", _register_config)
    call_when_imported("transformers.models.auto.modeling_auto", _register_models)
    call_when_imported("transformers.models.auto.processing_auto", _register_processor)
    call_when_imported("transformers.pipelines", _register_pipeline)
