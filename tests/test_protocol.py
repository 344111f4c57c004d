"""The protocol between the checker and the student's process: data only, checked on arrival, and
arguments changed in place come back to the checker as they would in a notebook."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from course.session import LoopbackChannel
from course.student import Student, copy_back, student_error
from course.student_side.wire import Decoder, Encoder, WireError, frame_length, pack, unpack
from course.verdict import CheckFailure


def roundtrip(value, handle_of=None, resolve=None):
    enc = Encoder(handle_of)
    node = enc.encode(value)
    msg, blobs = unpack(pack({"v": node}, enc.blobs)[8:])
    return Decoder(blobs, resolve).decode(msg["v"])


def test_values_survive_the_wire():
    value = {"x": np.arange(6.0).reshape(2, 3), "ids": np.array([[1, 2]], dtype=np.int32), "mask": np.array([True]),
             "t": (1, 2.5, "a", None), "nested": [{"k": [np.float32(1.5)]}], 3: "int key", ("a", 1): "tuple key",
             "nan": float("nan"), "inf": float("-inf"), "big": 2**80, "s": np.array(["ab", "c"])}
    back = roundtrip(value)
    assert back.keys() == value.keys()
    np.testing.assert_array_equal(back["x"], value["x"])
    assert back["ids"].dtype == np.int32 and back["mask"].dtype == bool and isinstance(back["t"], tuple)
    assert type(back["nested"][0]["k"][0]) is np.float32 and back["big"] == 2**80
    assert np.isnan(back["nan"]) and back["inf"] == float("-inf") and list(back["s"]) == ["ab", "c"]
    assert back["x"].flags.writeable


def test_shared_arrays_stay_shared_and_generators_keep_their_state():
    a = np.zeros(3)
    back = roundtrip([a, a, {"again": a}])
    assert back[0] is back[1] is back[2]["again"]
    rng = np.random.default_rng(5)
    rng.normal()
    copy = roundtrip(rng)
    assert copy.normal() == rng.normal()


def test_no_code_crosses():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(WireError):
        Encoder().encode(Evil())
    with pytest.raises(WireError):
        Encoder().encode(np.array([object()], dtype=object))
    for node in ({"$": "pickle", "v": "x"}, {"$": "__import__"}, {"no": "tag"}):
        with pytest.raises(WireError):
            Decoder([]).decode(node)


@pytest.mark.parametrize("node, blob", [
    ({"$": "array", "dtype": "|O", "shape": [1], "i": 0}, b"\0" * 8),               # objects
    ({"$": "array", "dtype": "<f8", "shape": [10**9], "i": 0}, b"\0" * 8),          # a claimed size
    ({"$": "array", "dtype": "<f8", "shape": [-1], "i": 0}, b"\0" * 8),
    ({"$": "array", "dtype": [["a", "<f8"]], "shape": [1], "i": 0}, b"\0" * 8),     # structured
    ({"$": "array", "dtype": "<f8", "shape": [1], "i": 5}, b"\0" * 8),              # no such blob
    ({"$": "generator", "state": {"bit_generator": "Evil"}}, b""),
    ({"$": "ref", "id": 99}, b""),
])
def test_forged_values_are_refused_before_use(node, blob):
    with pytest.raises(WireError):
        Decoder([memoryview(blob)]).decode(node)


def test_forged_frames_are_refused():
    with pytest.raises(WireError):
        frame_length(struct.pack(">Q", 1 << 40))
    good = pack({"a": 1}, [b"xyz"])[8:]
    with pytest.raises(WireError):
        unpack(good[:-1])                                   # blobs shorter than announced
    header = json.dumps({"msg": {}, "blobs": [5]}).encode()
    with pytest.raises(WireError):
        unpack(struct.pack(">I", len(header)) + header)     # a blob that is not there
    with pytest.raises(WireError):
        unpack(struct.pack(">I", 3) + b"{{{")


def student_for(source: str) -> Student:
    """A student whose notebook's cell 4 is ``source`` (run the way the grader runs cells)."""
    student = Student(LoopbackChannel({"__name__": "__main__"}))
    reply, _ = student.request({"op": "run_cell", "label": "cell 4", "source": source})
    assert reply["ok"], reply
    return student


def test_in_place_changes_come_back_and_identity_is_kept():
    student = student_for("def step(params, grads, state, rng):\n"
                          "    params['w'] -= grads['w']\n    params['new'] = 1.0\n    del params['gone']\n"
                          "    state.setdefault('m', []).append(rng.integers(100))\n    return None\n")
    w = np.ones(3)
    params, state, rng = {"w": w, "gone": 0}, {}, np.random.default_rng(0)
    twin = np.random.default_rng(0)
    student.function("step")(params, {"w": np.full(3, 0.5)}, state, rng)
    assert params["w"] is w and np.allclose(w, 0.5) and params["new"] == 1.0 and "gone" not in params
    assert state["m"] == [twin.integers(100)] and rng.integers(100) == twin.integers(100)


def test_objects_stay_on_the_students_side():
    student = student_for("class Model:\n    def __init__(self):\n        self.w = [1.0]\n"
                          "    def bump(self):\n        self.w[0] += 1\n        return self.w\n"
                          "def make():\n    return Model()\n")
    model = student.function("make")()
    assert model.type_name == "Model"
    assert model.method("bump")() == [2.0] and model.get("w") == [2.0]
    assert student.function("make")() is not model


def test_student_errors_name_their_cell_and_line():
    student = student_for("def f(x):\n    y = x + 1\n    return y @ np.eye(2)\n")
    with pytest.raises(CheckFailure, match=r"f raised NameError: name 'np' is not defined \(in cell 4, line 3: "
                                           r"return y @ np.eye\(2\)\)"):
        student.function("f")(1)
    assert "not implemented yet" in student_error({"type": "NotImplementedError"}, "g")
    assert "called sys.exit()" in student_error({"type": "SystemExit"}, "g")
    with pytest.raises(CheckFailure, match="no function named g"):
        student.function("g")
    with pytest.raises(CheckFailure, match="should be a function, but it is a int"):
        student_for("g = 3").function("g")


def test_copy_back_leaves_unrelated_values_alone():
    original = {"a": np.zeros(2), "b": [np.zeros(1)], "c": (np.zeros(1),)}
    after = {"a": np.ones(3), "b": [np.ones(1), 5], "c": (np.ones(1),)}
    b0 = original["b"][0]
    copy_back(original, after)
    assert original["a"].shape == (3,) and original["b"][0] is b0 and b0[0] == 1 and original["b"][1] == 5
    assert original["c"][0][0] == 1
