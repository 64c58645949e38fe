from transformers import pipeline

from occ_hf.models import PIPELINE_TASK

from .conftest import CLEAR, DESCRIBED, VIEW_CLASSES


def test_pipeline_returns_stages_and_label(trained_tiny, images_and_views, tmp_path):
    images, views = images_and_views
    recognizer = pipeline(PIPELINE_TASK, model=str(trained_tiny))
    paths = []
    for index, (image, view) in enumerate(zip(images, views, strict=False)):
        image.save(tmp_path / f"{index}.png")
        view.save(tmp_path / f"{index}_view.png")
        paths.append({"image": str(tmp_path / f"{index}.png"), "view": str(tmp_path / f"{index}_view.png")})
    results = recognizer(paths)
    assert [r["label"] for r in results] == VIEW_CLASSES
    assert [r["clear"] for r in results] == CLEAR
    assert [r["describe"] for r in results] == [[f"The object is {name}."] for name in DESCRIBED]
    single = recognizer(images[1], view=views[1])
    assert single == results[1] and single["used_view"] and single["reflect"] == "No."
    assert recognizer(paths, batch_size=1) == results
