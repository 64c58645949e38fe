import json

import pytest

from occ_hf.eval import load_references
from occ_hf.obman import ObManFormatError

from ..testing_utils import seed_file


def test_seed_chat_jsonl_labels_from_q1_answers():
    path = seed_file("train_Q1_Q6_10140.head40.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    references = load_references(path)
    assert [reference.sample_id for reference in references] == [row["id"] for row in rows]
    for reference, row in zip(references, rows, strict=True):
        assert row["conversations"][1]["value"] == f"The object is {reference.label}."
        assert reference.occlusion is None


def test_seed_chat_rows_as_one_json_array(tmp_path):
    # The seed's eccv_test.json holds the chat rows of its jsonl files as one array.
    path = seed_file("train_Q1_Q6_10140.head40.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    (tmp_path / "eccv_test.json").write_text(json.dumps(rows))
    assert load_references(tmp_path / "eccv_test.json") == load_references(path)


def test_seed_chat_jsonl_without_a_q1_answer_is_refused():
    # The excerpt of the CoT file keeps only the step-by-step row of some ids: they have no label.
    with pytest.raises(ValueError, match=r"train_Q1_Q6_Q0_4_balanced_10140.head20.jsonl: ids \['00003303'"):
        load_references(seed_file("train_Q1_Q6_Q0_4_balanced_10140.head20.jsonl"))


def test_label_rows_and_mappings(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"id": 3, "label": "jar", "occlusion": 0.5}\n{"id": "4", "label": "can"}\n')
    references = load_references(tmp_path / "rows.jsonl")
    assert [(r.sample_id, r.label, r.occlusion) for r in references] == [
        ("00000003", "jar", 0.5),
        ("00000004", "can", None),
    ]
    (tmp_path / "map.json").write_text('{"00000004": "can", "00000003": {"label": "jar", "occlusion": 0.25}}')
    references = load_references(tmp_path / "map.json", ids=["3", 4])
    assert [(r.sample_id, r.label, r.occlusion) for r in references] == [
        ("00000003", "jar", 0.25),
        ("00000004", "can", None),
    ]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("r.json", '[{"id": 1, "label": "mug"}]', r"r.json:0: label 'mug' is not one of"),
        ("r.json", '[{"id": 1, "label": "jar", "occlusion": 1.5}]', r"r.json:0: occlusion 1.5 is not a number"),
        ("r.json", '[{"id": 1}]', r"r.json:0: expected a row"),
        ("r.json", '[{"id": 1, "label": "jar"}, {"id": "00000001", "label": "jar"}]', r"id 00000001 appears twice"),
        ("r.json", "[]", r"r.json: no references"),
        ("r.jsonl", '{"id": 1, "label": "jar"}\n{oops', r"r.jsonl:2: not valid JSON"),
        ("r.json", '{"00000001": "jar", "00000001": "can"}', r"r.json: key '00000001' appears twice"),
        ("r.json", '[{"id": 3.0, "label": "jar"}]', r"r.json:0: sample id 3.0 is a float"),
        ("r.jsonl", '{"id": null, "label": "jar"}', r"r.jsonl:1: sample id None is a NoneType"),
        (
            "r.jsonl",
            json.dumps(
                {
                    "id": "1",
                    "conversations": [
                        {"from": "human", "value": "What's the object in the hand?\n<image>"},
                        {"from": "gpt", "value": "The object is Jar."},
                    ],
                }
            ),
            r"r.jsonl:1: Q1 answer 'The object is Jar.' is not",
        ),
    ],
)
def test_bad_references_name_the_file(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(ValueError, match=message):
        load_references(tmp_path / name)


def test_missing_requested_ids_and_files(tmp_path):
    (tmp_path / "r.json").write_text('{"1": "jar"}')
    with pytest.raises(ValueError, match=r"1 of the requested ids have no reference \(first: \['00000002'\]\)"):
        load_references(tmp_path / "r.json", ids=[1, 2])
    with pytest.raises(FileNotFoundError, match="nope.json: references not found"):
        load_references(tmp_path / "nope.json")


def test_obman_split_references(synth_obman, synth_split):
    root, summary = synth_obman
    references = load_references(root, split="test", shapenet_root=summary.shapenet_root)
    samples = list(synth_split)
    assert len(references) == len(samples) == 24
    for reference, sample in zip(references, samples, strict=True):
        assert (reference.sample_id, reference.label) == (sample.sample_id, sample.class_name)
        assert reference.occlusion == pytest.approx(sample.occlusion) and 0.0 <= reference.occlusion <= 1.0
    chosen = load_references(root, split="test", ids=[5, 2])
    assert [reference.sample_id for reference in chosen] == ["00000005", "00000002"]
    with pytest.raises(ObManFormatError, match="no meta folder"):
        load_references(root, split="val")
