"""The protocol between the trusted checker and the student's process: plain data only.

A message is one frame on a pipe::

    8 bytes   total length of the rest (big-endian)
    4 bytes   length of the JSON header
    header    UTF-8 JSON: {"msg": {...}, "blobs": [n_0, n_1, ...]}
    blobs     raw array bytes, n_0 + n_1 + ... bytes

Values travel as a JSON tree in which the few non-JSON things are tagged objects (key ``"$"``):

=============  =========================================================================
``list``       ``{"$": "list", "v": [...]}`` (likewise ``tuple``; ``dict`` is a list of pairs)
``array``      a numpy array: dtype and shape in JSON, its bytes in a blob
``scalar``     a numpy scalar (``np.float64(1.5)``), stored like a 0-d array
``tensor``     a torch tensor, stored like an array (rebuilt only where torch is installed)
``generator``  a ``numpy.random.Generator``, as the JSON state of its bit generator
``handle``     an object that stays in the student's process (a model, a class instance)
``ref``        a second reference to an array, list or dict sent earlier in the same message
=============  =========================================================================

Nothing here can carry code: there is no pickle, dtypes are limited to numbers, booleans and
strings, and every size is checked against the bytes that came. Both sides import this module; it
needs only the standard library and numpy (torch is used when it is already imported).
"""
from __future__ import annotations

import json
import math
import struct
import sys

import numpy as np

#: a frame larger than this is refused (the other side is broken or hostile)
MAX_FRAME = 256 << 20
MAX_DEPTH = 100
_ALLOWED_KINDS = "biufcUS"


class WireError(ValueError):
    """A frame or value that does not follow the protocol."""


# --------------------------------------------------------------------------------------------
# framing
# --------------------------------------------------------------------------------------------

def pack(msg: dict, blobs: list[bytes]) -> bytes:
    """One frame holding the JSON message ``msg`` and the binary ``blobs``."""
    header = json.dumps({"msg": msg, "blobs": [len(b) for b in blobs]}, allow_nan=True).encode()
    body_len = 4 + len(header) + sum(len(b) for b in blobs)
    return b"".join([struct.pack(">QI", body_len, len(header)), header, *blobs])


def frame_length(prefix: bytes) -> int:
    """The length of the rest of a frame from its first 8 bytes (refusing absurd sizes)."""
    (n,) = struct.unpack(">Q", prefix)
    if n < 4 or n > MAX_FRAME:
        raise WireError(f"a frame of {n} bytes (at most {MAX_FRAME} are accepted)")
    return n


def unpack(body: bytes | bytearray | memoryview) -> tuple[dict, list[memoryview]]:
    """``(msg, blobs)`` from the bytes of a frame after its 8-byte length."""
    view = memoryview(body)
    (hlen,) = struct.unpack(">I", view[:4])
    if 4 + hlen > len(view):
        raise WireError("the header is longer than the frame")
    try:
        header = json.loads(bytes(view[4:4 + hlen]).decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireError(f"the header is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("msg"), dict):
        raise WireError("the header has no message")
    sizes = header.get("blobs", [])
    if not isinstance(sizes, list) or not all(isinstance(s, int) and s >= 0 for s in sizes):
        raise WireError("bad blob sizes")
    if 4 + hlen + sum(sizes) != len(view):
        raise WireError("the blob sizes do not add up to the frame length")
    blobs, at = [], 4 + hlen
    for size in sizes:
        blobs.append(view[at:at + size])
        at += size
    return header["msg"], blobs


def read_frame(stream) -> tuple[dict, list[memoryview]]:
    """Read one frame from a binary stream (blocking); EOFError when the stream has ended."""
    prefix = _read_exactly(stream, 8)
    return unpack(_read_exactly(stream, frame_length(prefix)))


def write_frame(stream, msg: dict, blobs: list[bytes] = ()) -> None:
    stream.write(pack(msg, list(blobs)))
    stream.flush()


def _read_exactly(stream, n: int) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = stream.readinto(view[got:])
        if not k:
            raise EOFError("the other side closed the channel")
        got += k
    return buf


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------

class Encoder:
    """Turns a value into a JSON tree plus blobs. ``handle_of(obj)`` is asked for anything that
    is not plain data; it returns a handle id, or None to refuse the value."""

    def __init__(self, handle_of=None):
        self.blobs: list[bytes] = []
        self._handle_of = handle_of
        self._seen: dict[int, int] = {}
        self._keep: list = []  # keeps encoded objects alive, so their ids stay unique

    def encode(self, value, depth: int = 0):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and type(value) is int:
            return value
        if type(value) is float:
            return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
        if depth > MAX_DEPTH:
            return self._handle(value, "nested too deeply")
        if id(value) in self._seen:
            return {"$": "ref", "id": self._seen[id(value)]}
        if isinstance(value, np.ndarray) and type(value) is np.ndarray:
            return self._array(value, "array")
        if isinstance(value, np.generic) and value.dtype.kind in _ALLOWED_KINDS:
            return self._blob(np.asarray(value), "scalar")
        if type(value) in (list, tuple):
            node = self._remember(value, {"$": type(value).__name__})
            node["v"] = [self.encode(v, depth + 1) for v in value]
            return node
        if type(value) is dict:
            node = self._remember(value, {"$": "dict"})
            node["v"] = [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in value.items()]
            return node
        if isinstance(value, np.random.Generator):
            return {"$": "generator", "state": value.bit_generator.state}
        tensor = _as_tensor(value)
        if tensor is not None:
            return self._tensor(tensor)
        return self._handle(value, f"a {type(value).__name__} cannot be sent as data")

    def _remember(self, value, node: dict) -> dict:
        node["id"] = self._seen[id(value)] = len(self._seen)
        self._keep.append(value)
        return node

    def _array(self, a: np.ndarray, tag: str) -> dict:
        if a.dtype.kind not in _ALLOWED_KINDS or a.dtype.fields is not None or a.dtype.subdtype:
            return self._handle(a, f"an array of dtype {a.dtype} cannot be sent as data")
        return self._remember(a, self._blob(a, tag))

    def _blob(self, a: np.ndarray, tag: str) -> dict:
        self.blobs.append(np.ascontiguousarray(a).tobytes())
        return {"$": tag, "dtype": a.dtype.str, "shape": list(a.shape), "i": len(self.blobs) - 1}

    def _tensor(self, t) -> dict:
        a = t.detach().cpu().resolve_conj().resolve_neg().numpy()
        node = self._blob(a, "tensor")
        node["device"] = str(t.device)
        return node

    def _handle(self, value, why: str) -> dict:
        hid = self._handle_of(value) if self._handle_of else None
        if hid is None:
            raise WireError(why)
        return {"$": "handle", "id": hid, "type": type(value).__name__}


class Decoder:
    """Rebuilds values from a JSON tree and blobs. ``resolve_handle(id, type_name)`` gives the
    object a handle stands for; ``tensor(array, device)`` rebuilds a tensor (None: refused)."""

    def __init__(self, blobs, resolve_handle=None, tensor=None):
        self.blobs = blobs
        self._resolve = resolve_handle
        self._make_tensor = tensor  # not self._tensor: that name is the method for the "tensor" tag
        self._objects: dict[int, object] = {}

    def decode(self, node, depth: int = 0):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if depth > MAX_DEPTH + 2:
            raise WireError("a value nested too deeply")
        if not isinstance(node, dict) or not isinstance(node.get("$"), str):
            raise WireError(f"not a tagged value: {str(node)[:80]}")
        tag = node["$"]
        method = getattr(self, "_" + tag, None) if tag.isalpha() else None
        if method is None:
            raise WireError(f"unknown value tag {tag!r}")
        return method(node, depth)

    def _float(self, node, depth):
        text = node.get("v")
        if text not in ("nan", "inf", "-inf"):
            raise WireError(f"not a float: {text!r}")
        return float(text)

    def _ref(self, node, depth):
        try:
            return self._objects[node["id"]]
        except (KeyError, TypeError):
            raise WireError("a reference to nothing sent before") from None

    def _keep(self, node, value):
        if "id" in node:
            self._objects[node["id"]] = value
        return value

    def _items(self, node):
        items = node.get("v")
        if not isinstance(items, list):
            raise WireError("a container without items")
        return items

    def _list(self, node, depth):
        out = self._keep(node, [])
        out.extend(self.decode(v, depth + 1) for v in self._items(node))
        return out

    def _tuple(self, node, depth):
        return self._keep(node, tuple(self.decode(v, depth + 1) for v in self._items(node)))

    def _dict(self, node, depth):
        out = self._keep(node, {})
        for pair in self._items(node):
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("a dict entry that is not a pair")
            key = self.decode(pair[0], depth + 1)
            try:
                out[key] = self.decode(pair[1], depth + 1)
            except TypeError:
                raise WireError(f"a dict key that cannot be a key: {type(key).__name__}") from None
        return out

    def _array(self, node, depth):
        return self._keep(node, self.array(node))

    def _scalar(self, node, depth):
        return self.array(node)[()]

    def _tensor(self, node, depth):
        a = self.array(node)
        if self._make_tensor is None:
            raise WireError("a torch tensor, where torch is not available")
        return self._make_tensor(a, node.get("device", "cpu"))

    def _generator(self, node, depth):
        state = node.get("state")
        if not isinstance(state, dict) or state.get("bit_generator") not in ("PCG64", "PCG64DXSM", "Philox",
                                                                            "SFC64", "MT19937"):
            raise WireError("not the state of a numpy bit generator")
        bits = getattr(np.random, state["bit_generator"])()
        try:
            bits.state = state
        except (TypeError, ValueError, KeyError) as exc:
            raise WireError(f"a bad generator state: {exc}") from None
        return np.random.Generator(bits)

    def _handle(self, node, depth):
        if self._resolve is None:
            raise WireError("an object handle, where none is expected")
        return self._resolve(node.get("id"), str(node.get("type", "object")))

    def array(self, node) -> np.ndarray:
        """An array from its node, after checking its dtype and that its bytes are all there."""
        try:
            dtype = np.dtype(str(node["dtype"]))
            shape = tuple(node["shape"])
            blob = self.blobs[node["i"]]
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise WireError(f"a bad array description: {exc}") from None
        if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise WireError(f"arrays of dtype {dtype} are not accepted")
        if len(shape) > 32 or not all(type(n) is int and n >= 0 for n in shape):
            raise WireError(f"a bad array shape {shape}")
        if math.prod(shape) * dtype.itemsize != len(blob):
            raise WireError(f"an array of shape {shape} and dtype {dtype} with {len(blob)} bytes")
        return np.frombuffer(bytearray(blob), dtype=dtype).reshape(shape)


def _as_tensor(value):
    """``value`` when it is a torch tensor (torch already imported), else None."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return value
    return None


def torch_tensor(array: np.ndarray, device: str):
    """Rebuild a tensor on the student's side (torch must be importable there)."""
    import torch

    return torch.from_numpy(array).to(device)
