"""The wire format between grader and sandbox: plain arrays and JSON, never pickle."""

import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from autograder import protocol
from autograder.protocol import Handle, ProtocolError, Rejected


def round_trip(value):
    buffers: list = []
    node = protocol.encode_value(value, buffers)
    return protocol.decode_value(node, buffers)


def test_arrays_scalars_and_containers_round_trip_exactly(rng):
    x = rng.standard_normal((3, 4, 5))
    value = (x, np.float32(1.5), 2, -0.0, float("nan"), True, None, "text",
             [np.arange(6, dtype=np.int32).reshape(2, 3)], {"mode": "train", "eps": 1e-5},
             x[:, ::2].T)
    back = round_trip(value)
    assert type(back) is tuple and len(back) == len(value)
    np.testing.assert_array_equal(back[0], x)
    assert back[1] == np.float32(1.5) and back[1].dtype == np.float32
    assert back[2] == 2 and type(back[2]) is int
    assert np.signbit(back[3]) and np.isnan(back[4]) and back[5] is True and back[6] is None
    assert back[8][0].dtype == np.int32 and back[8][0].shape == (2, 3)
    assert back[9] == {"mode": "train", "eps": 1e-5}
    np.testing.assert_array_equal(back[10], x[:, ::2].T)


def test_decoded_arrays_are_exact_writable_ndarrays(rng):
    back = round_trip(rng.standard_normal((2, 2)))
    assert type(back) is np.ndarray and back.flags.writeable and back.flags.owndata


def test_ndarray_subclass_is_rejected_not_sent():
    class Liar(np.ndarray):
        def __eq__(self, other):
            return True

    back = round_trip(np.zeros(3).view(Liar))
    assert isinstance(back, Rejected) and "subclass of numpy.ndarray" in back.reason


def test_float_subclass_and_arbitrary_objects_are_rejected_by_type():
    class LyingFloat(float):
        pass

    assert isinstance(round_trip(LyingFloat(1.0)), Rejected)
    assert isinstance(round_trip(object()), Rejected)
    assert isinstance(round_trip(np.array([object()])), Rejected)


def test_object_whose_unpickling_runs_code_is_never_pickled():
    ran = []

    class Payload:
        def __reduce__(self):
            ran.append(True)
            return (print, ("unpickled!",))

    back = round_trip((Payload(), {"x": Payload()}))
    assert isinstance(back[0], Rejected) and "Payload" in back[0].reason
    assert isinstance(back[1]["x"], Rejected)
    assert ran == []


def test_values_kept_in_the_child_come_back_as_handles():
    kept = []
    buffers: list = []
    node = protocol.encode_value((np.ones(2), object()), buffers,
                                 keep=lambda v: kept.append(v) or len(kept))
    back = protocol.decode_value(node, buffers, generation=3)
    assert back[1] == Handle(1, 3) and len(kept) == 1


@pytest.mark.parametrize("dtype", ["|O8", "<U4", "|V8", "<c16", "<M8[s]", "f8; import os"])
def test_parent_refuses_non_numeric_dtypes(dtype):
    node = {"t": "array", "dtype": dtype, "shape": [1], "b": 0}
    with pytest.raises(ProtocolError):
        protocol.decode_value(node, [b"\0" * 8])


def test_parent_refuses_arrays_whose_bytes_do_not_match_their_shape():
    node = {"t": "array", "dtype": "<f8", "shape": [3], "b": 0}
    with pytest.raises(ProtocolError, match="does not match"):
        protocol.decode_value(node, [b"\0" * 16])
    with pytest.raises(ProtocolError):
        protocol.decode_value({"t": "array", "dtype": "<f8", "shape": [-1], "b": 0}, [b""])
    with pytest.raises(ProtocolError):
        protocol.decode_value({"t": "nonsense"}, [])


def test_messages_round_trip_through_a_pipe(rng):
    read, write = os.pipe()
    try:
        x = rng.standard_normal((4, 3))
        buffers: list = []
        header = {"ok": True, "value": protocol.encode_value(x, buffers)}
        protocol.write_message(write, header, buffers)
        got, out = protocol.read_message(read, deadline=None)
        np.testing.assert_array_equal(protocol.decode_value(got["value"], out), x)
    finally:
        os.close(read)
        os.close(write)


def test_oversized_or_malformed_replies_are_refused_before_allocating():
    read, write = os.pipe()
    try:
        os.write(write, struct.pack(">I", protocol.MAX_HEADER_BYTES + 1))
        with pytest.raises(ProtocolError, match="too large"):
            protocol.read_message(read)
        text = b'{"buffers": [1000000000]}'
        os.write(write, struct.pack(">I", len(text)) + text)
        with pytest.raises(ProtocolError, match="exceeds"):
            protocol.read_message(read, max_payload=1024)
        os.write(write, struct.pack(">I", 3) + b"{x]")
        with pytest.raises(ProtocolError, match="not JSON"):
            protocol.read_message(read)
    finally:
        os.close(read)
        os.close(write)


def test_read_times_out_and_reports_a_closed_channel():
    import time
    read, write = os.pipe()
    with pytest.raises(protocol.ChannelTimeout):
        protocol.read_message(read, deadline=time.monotonic() + 0.05)
    os.close(write)
    with pytest.raises(protocol.ChannelClosed):
        protocol.read_message(read, deadline=time.monotonic() + 1)
    os.close(read)


def test_no_part_of_the_grader_child_boundary_uses_pickle():
    package = Path(protocol.__file__).parent
    boundary = ["protocol.py", "plugin.py", "checks.py"] + sorted(
        str(p.relative_to(package)) for p in (package / "sandbox").glob("*.py"))
    for name in boundary:
        text = (package / name).read_text()
        assert not re.search(r"^\s*(import|from)\s+(pickle|cPickle|dill|marshal|shelve)\b",
                             text, re.M), name
        assert "allow_pickle=True" not in text and "pickle.load" not in text, name
