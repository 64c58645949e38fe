"""The models of occ-hf, registered with transformers' Auto classes and pipeline registry when `occ_hf` is imported
(`occ_hf.registration`).

```python
import occ_hf                                    # registers, lazily
from transformers import AutoModelForImageTextToText, AutoProcessor, pipeline

model = AutoModelForImageTextToText.from_pretrained("runs/tiny")       # also AutoModel, AutoConfig
recognizer = pipeline("occluded-object-recognition", model="runs/tiny")
```
"""

__all__ = ["MODEL_TYPE", "PIPELINE_TASK"]

PIPELINE_TASK = "occluded-object-recognition"
MODEL_TYPE = "occ_internvl"
