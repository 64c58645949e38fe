import os
import pickle
import struct
import subprocess

import numpy as np
import pytest

from occ_hf.obman import ObManFormatError, UnsafePickleError, load_meta
from occ_hf.obman.input_files import MAX_META_FILE_BYTES
from occ_hf.obman.safe_pickle import safe_loads


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _OpensAProcess:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.Popen, (["touch", str(self.marker)],))


class _Evals:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w')",))


@pytest.mark.parametrize("payload", [_RunsACommand, _OpensAProcess, _Evals])
def test_malicious_pickle_runs_nothing(tmp_path, payload):
    marker = tmp_path / "pwned"
    path = tmp_path / "00000000.pkl"
    # Hidden inside an otherwise plausible meta dict.
    path.write_bytes(pickle.dumps({"class_id": "02876657", "x": payload(marker)}, protocol=3))
    with pytest.raises(UnsafePickleError, match=r"00000000\.pkl: refused to load global"):
        load_meta(path)
    assert not marker.exists()


def test_plain_pickle_load_would_run_it(tmp_path):
    """Guards the test above: the payload is live, so the restriction is what stopped it."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_RunsACommand(marker)))
    assert marker.exists()


def test_numpy_arrays_scalars_and_containers_load():
    meta = {
        "affine_transform": np.eye(4, dtype=np.float32),
        "depth_min": np.float32(0.7),
        "hand_pose": [0.1] * 48,
        "side": "right",
        "pair": (1, 2.5),
        "obj_scale": 0.2,
    }
    for protocol in (2, 3, 4, 5):
        loaded = safe_loads(pickle.dumps(meta, protocol=protocol))
        np.testing.assert_array_equal(loaded["affine_transform"], meta["affine_transform"])
        assert loaded["depth_min"] == np.float32(0.7) and loaded["depth_min"].dtype == np.float32
        assert loaded["hand_pose"] == meta["hand_pose"] and loaded["pair"] == (1, 2.5)


def test_numpy_1_names_of_the_real_files_load():
    """ObMan was pickled under numpy 1.13, whose arrays reference numpy.core.multiarray."""
    data = pickle.dumps({"a": np.arange(3, dtype=np.float32), "b": np.float32(2)}, protocol=3)
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"cnumpy.core.multiarray\n_reconstruct" in data
    loaded = safe_loads(data)
    np.testing.assert_array_equal(loaded["a"], [0, 1, 2])


def test_truncated_pickle_names_the_file(tmp_path):
    path = tmp_path / "00000042.pkl"
    path.write_bytes(pickle.dumps({"class_id": "02876657", "a": np.zeros(100)}, protocol=3)[:-40])
    with pytest.raises(ObManFormatError, match=r"00000042\.pkl: truncated or corrupt pickle"):
        load_meta(path)


def test_not_a_dict(tmp_path):
    path = tmp_path / "00000001.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ObManFormatError, match="expected a dict"):
        load_meta(path)


def test_an_allowed_global_raising_is_a_format_error(tmp_path):
    # _codecs.encode is allowed (protocol-2 numpy arrays need it); an unknown codec made it raise a bare LookupError.
    path = tmp_path / "00000007.pkl"
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x03\x00\x00\x00zzz\x86R.")
    with pytest.raises(ObManFormatError, match=r"00000007\.pkl: truncated or corrupt pickle \(LookupError"):
        load_meta(path)


@pytest.mark.parametrize("index", [2**26, 2**31])
def test_a_memo_index_larger_than_the_file_is_refused(tmp_path, index):
    # 9 bytes: a dict memoized at `index`; the C unpickler allocated a memo table that large (1.1 GB for 2**26).
    path = tmp_path / "00000008.pkl"
    path.write_bytes(b"\x80\x02}r" + struct.pack("<I", index) + b".")
    with pytest.raises(ObManFormatError, match=rf"00000008\.pkl: corrupt pickle \(memo index {index} at byte 3"):
        load_meta(path)


def test_a_meta_file_over_the_cap_or_not_a_file_is_refused(tmp_path):
    path = tmp_path / "00000009.pkl"
    with open(path, "wb") as file:
        file.truncate(MAX_META_FILE_BYTES + 1)  # sparse
    with pytest.raises(ObManFormatError, match=r"00000009\.pkl: \d+ bytes, more than"):
        load_meta(path)
    fifo = tmp_path / "00000010.pkl"
    os.mkfifo(fifo)
    with pytest.raises(ObManFormatError, match=r"00000010\.pkl: a FIFO"):
        load_meta(fifo)
