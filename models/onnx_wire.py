"""The one edit the detectors make to an ONNX graph, on its protobuf wire format: no ``onnx`` package.

``import onnx`` costs about a second a process (most of it ``ml_dtypes``),
paid by every run of the CLI and by every Ray worker at its start, for a
change of a few dimensions: the YuNet release declares a fixed 640x640 input,
and the detector wants it free (:meth:`models.face_detectors.YuNetDetector._dynamic_model`).
A model is a protobuf message; the few fields on the way to a tensor's shape
are parsed and written back here, everything else copied as it is, so the
result is byte for byte what ``onnx`` itself serialises for the same edit
(``tests/test_detect_faces.py`` compares the two).

Field numbers (``onnx/onnx.proto``): ModelProto.graph 7; GraphProto.input 11,
output 12, value_info 13; ValueInfoProto.name 1, type 2; TypeProto.tensor_type
1; TypeProto.Tensor.shape 2; TensorShapeProto.dim 1; Dimension.dim_value 1,
dim_param 2.
"""

from __future__ import annotations

from collections.abc import Callable

_LEN = 2  # wire type of a length-delimited field (a message, a string, packed values)
Field = tuple[int, int, bytes]  # (field number, wire type, payload: a varint's bytes, or a message's)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("a protobuf varint runs past the end of its message")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _put_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def parse(buf: bytes) -> list[Field]:
    """The fields of one message, in their order (nested messages left as bytes)."""
    fields: list[Field] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        start = pos
        if wire == 0:
            _, pos = _varint(buf, pos)
            payload = buf[start:pos]
        elif wire == 1:
            pos += 8
            payload = buf[start:pos]
        elif wire == _LEN:
            size, pos = _varint(buf, pos)
            payload = buf[pos:pos + size]
            pos += size
        elif wire == 5:
            pos += 4
            payload = buf[start:pos]
        else:
            raise ValueError(f"protobuf wire type {wire} (field {number}) is not one an ONNX model uses")
        if pos > len(buf):
            raise ValueError(f"protobuf field {number} runs past the end of its message")
        fields.append((number, wire, payload))
    return fields


def encode(fields: list[Field]) -> bytes:
    """The message of ``fields`` (:func:`parse`'s inverse)."""
    out = bytearray()
    for number, wire, payload in fields:
        out += _put_varint(number << 3 | wire)
        if wire == _LEN:
            out += _put_varint(len(payload))
        out += payload
    return bytes(out)


def edit(buf: bytes, number: int, change: Callable[[bytes], bytes], which: int | None = None) -> bytes:
    """``buf`` with the message in field ``number`` (every one, or its ``which``-th) replaced by ``change`` of it."""
    out: list[Field] = []
    seen = 0
    for field in parse(buf):
        if field[0] == number and field[1] == _LEN:
            if which is None or seen == which:
                field = (number, _LEN, change(field[2]))
            seen += 1
        out.append(field)
    return encode(out)


def _name(value_info: bytes) -> str:
    return next((p for n, w, p in parse(value_info) if n == 1 and w == _LEN), b"").decode("utf-8")


def free_dims(value_info: bytes, names: dict[int, str]) -> bytes:
    """A ValueInfoProto whose tensor dimensions ``names`` maps (index -> symbolic name) are made free."""
    def dim(name: str) -> Callable[[bytes], bytes]:
        return lambda d: encode([(2, _LEN, name.encode("utf-8")), *(f for f in parse(d) if f[0] not in (1, 2))])

    def shape(s: bytes) -> bytes:
        for index, name in names.items():
            s = edit(s, 1, dim(name), which=index)
        return s

    return edit(value_info, 2, lambda t: edit(t, 1, lambda tensor: edit(tensor, 2, shape)))


def free_input_size(model: bytes, input_dims: dict[int, str], output_dim: int) -> bytes:
    """An ONNX model (serialised) with its first input's ``input_dims`` made free, every output's ``output_dim``
    named ``<output name>_anchors``, and the graph's intermediate shapes (value_info, stale) dropped: the edit
    YuNet's fixed-size release needs for onnxruntime to follow the image's size."""
    def graph(g: bytes) -> bytes:
        g = edit(g, 11, lambda vi: free_dims(vi, input_dims), which=0)
        g = edit(g, 12, lambda vi: free_dims(vi, {output_dim: f"{_name(vi)}_anchors"}))
        return encode([f for f in parse(g) if f[0] != 13])

    return edit(model, 7, graph)
