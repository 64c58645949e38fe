import itertools
from dataclasses import dataclass

import pytest

from occ_hf.eval import (
    EvalItem,
    ImagePrediction,
    RecognizerOutputError,
    Reference,
    predict,
    predict_sampled,
    score_predictions,
)
from occ_hf.eval.inference import merge_shards, shard_items


@dataclass
class Answer:
    description: str | None
    clarity: str | None
    view_answer: str | None


class TableRecognizer:
    """A stand-in for the model's `recognize()`: answers from a table keyed by image, asks the view only when it
    says "No." and a view exists, raises on images named "corrupt", and records its batch sizes."""

    def __init__(self, table):
        self.table = table
        self.batches = []

    def __call__(self, images, views):
        self.batches.append(len(images))
        if any(image.startswith("corrupt") for image in images):
            raise OSError("image file is truncated")
        results = []
        for image, view in zip(images, views, strict=True):
            description, clarity, on_view = self.table[image]
            results.append(Answer(description, clarity, on_view if clarity == "No." and view is not None else None))
        return results


TABLE = {
    "a.jpg": ("The object is jar.", "Yes.", None),
    "b.jpg": ("The object is jar.", "No.", "The object is bowl."),
    "c.jpg": ("The object is can.", "No.", "The object is can."),
    "d.jpg": ("The object is knife.", "Yes.", None),
}


def _items():
    return [
        EvalItem("00000001", "a.jpg"),
        EvalItem("00000002", "b.jpg", view="b_view.png"),
        EvalItem("00000003", "c.jpg", view=None),  # unclear, and its view is missing
        EvalItem("00000004", "corrupt.jpg"),
        EvalItem("00000005", "d.jpg"),
    ]


def test_predict_batches_and_skips_failed_images_like_the_seed():
    recognizer = TableRecognizer(TABLE)
    predictions = predict(recognizer, _items(), batch_size=2)
    # batches of 2; the batch holding the corrupt image is retried one image at a time
    assert recognizer.batches == [2, 2, 1, 1, 1]
    records = predictions.records
    assert list(records) == ["00000001", "00000002", "00000003", "00000004", "00000005"]
    assert records["00000002"].decision == "The object is bowl."
    assert records["00000003"].view_answer is None and records["00000003"].decision is None
    assert records["00000004"].description is None
    references = [
        Reference("00000001", "jar"),
        Reference("00000002", "bowl"),
        Reference("00000003", "can"),
        Reference("00000004", "can"),
        Reference("00000005", "knife"),
    ]
    report = score_predictions(references, predictions)
    assert report["metrics"]["description"] == {"accuracy": 0.75, "correct": 3, "total": 4}
    assert report["metrics"]["decision"] == {"accuracy": 0.6, "correct": 3, "total": 5}
    assert report["decision_breakdown"]["unclear_no_view"] == 1 and report["decision_breakdown"]["no_prediction"] == 1


def test_mappings_are_results_too():
    def recognize(images, views):
        return [{"description": "The object is jar.", "clarity": "Yes.", "view_answer": None} for _ in images]

    predictions = predict(recognize, [EvalItem("7", "x.jpg")])
    assert predictions.records["00000007"].decision == "The object is jar."


def test_broken_recognizers_stop_the_run():
    with pytest.raises(RecognizerOutputError, match="returned 0 results for 1 images"):
        predict(lambda images, views: [], [EvalItem("1", "a.jpg")])
    with pytest.raises(RecognizerOutputError, match="description=3"):
        predict(lambda images, views: [Answer(3, "Yes.", None)], [EvalItem("1", "a.jpg")])
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        predict(TableRecognizer(TABLE), _items(), batch_size=0)


def test_predict_sampled_votes_over_k_runs():
    # a "sampling" recognizer: the answer for b.jpg cycles jar, bowl, bowl over the runs
    cycle = itertools.cycle(["The object is jar.", "The object is bowl.", "The object is bowl."])

    def recognize(images, views):
        return [Answer(next(cycle), "Yes.", None) for _ in images]

    predictions = predict_sampled(recognize, [EvalItem("00000002", "b.jpg")], k=3)
    assert predictions.records["00000002"].decision == "The object is bowl."
    assert predictions.source == "majority vote of 3 sampled runs"
    with pytest.raises(ValueError, match="k >= 1"):
        predict_sampled(recognize, [], k=0)


class NameRecognizer:
    """Answers every image with its own name, and records the batches it was called with, by image name."""

    def __init__(self):
        self.batches = []

    def __call__(self, images, views):
        self.batches.append(list(images))
        return [Answer(f"The object is {image}.", "Yes.", None) for image in images]


@pytest.mark.parametrize("batch_size", [1, 3, 4])
@pytest.mark.parametrize("num_items", [0, 1, 2, 5, 8, 13])
def test_shards_recognise_each_image_once_in_the_batches_of_one_process(num_items, batch_size):
    items = [EvalItem(f"{i:08d}", f"image{i}") for i in range(num_items)]
    sample_ids = [item.sample_id for item in items]
    alone = NameRecognizer()
    single = list(predict(alone, items, batch_size).records.values())
    for num_processes in range(1, 5):
        shards = [shard_items(items, batch_size, num_processes, index) for index in range(num_processes)]
        # Whole batches, shares within one batch of each other, nothing repeated or padded.
        assert [item for shard in shards for item in shard] == items
        sizes = [-(-len(shard) // batch_size) for shard in shards]
        assert max(sizes) - min(sizes) <= 1
        assert all(len(shard) % batch_size == 0 for shard in shards[:-1] if shard)
        recognizers = [NameRecognizer() for _ in shards]
        records = [
            list(predict(recognizer, shard, batch_size).records.values())
            for recognizer, shard in zip(recognizers, shards, strict=True)
        ]
        assert merge_shards(records, sample_ids) == single
        # Each recognize() call is one the single process makes: the same images, so the same padding.
        assert [batch for recognizer in recognizers for batch in recognizer.batches] == alone.batches


def test_merge_shards_refuses_a_missing_repeated_or_misplaced_image():
    records = [ImagePrediction.from_stages(i, "The object is jar.", "Yes.") for i in range(1, 5)]
    sample_ids = [record.sample_id for record in records]
    with pytest.raises(ValueError, match="returned 3 records for 4 images, nothing at position 3 where 00000004"):
        merge_shards([records[:2], records[2:3]], sample_ids)
    with pytest.raises(ValueError, match="returned 5 records for 4 images, 00000002 at position 2 where 00000003"):
        merge_shards([records[:2], records[1:]], sample_ids)
    with pytest.raises(ValueError, match="00000003 at position 0 where 00000001 belongs"):
        merge_shards([records[2:], records[:2]], sample_ids)
    with pytest.raises(ValueError, match=r"process_index must be in \[0, 2\), got 2"):
        shard_items([], 4, num_processes=2, process_index=2)
