import pytest

from occ_hf.cot import ClarityLabeler


@pytest.mark.parametrize(
    ("source", "content", "match"),
    [
        ("predictions", b'{"3": "The object is jar.", "3": "The object is can."}', r"p\.json: key '3' appears twice"),
        ("predictions", b'{"abc": "The object is jar."}', r"p\.json: 'abc' is not an ObMan sample id"),
        ("predictions", b'{"3": "The object is caf\xe9."}', r"p\.json: not UTF-8 text"),
        ("unclear_ids", b'[{"answer": null}]', r"p\.json: None is not an ObMan sample id"),
        ("unclear_ids", b'[{"question": "?"}]', r"p\.json: an entry has no 'answer'"),
    ],
)
def test_a_bad_clarity_source_names_the_file(tmp_path, source, content, match):
    path = tmp_path / "p.json"
    path.write_bytes(content)
    read = ClarityLabeler.from_predictions if source == "predictions" else ClarityLabeler.from_unclear_ids
    with pytest.raises(ValueError, match=match):
        read(path)
