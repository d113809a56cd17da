"""A small reader and writer of the safetensors format, for the PyTorch peer.

The `safetensors` pip package is not part of Debian's python3-torch, so the peer carries its own.
Format: an 8-byte little-endian header length N, N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
then the raw little-endian tensor bytes; offsets are relative to the end of the header.
"""

import json
import struct
import sys

import torch

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}
ITEM_SIZE = {k: torch.empty((), dtype=v).element_size() for k, v in DTYPES.items()}

# A header bigger than this is a corrupt length field, not a real file (real headers are KBs).
MAX_HEADER_BYTES = 100 * 1024 * 1024

if sys.byteorder != "little":
    raise RuntimeError("safetensors_io assumes a little-endian host")


class SafetensorsError(ValueError):
    pass


def save(path, tensors, metadata=None):
    """Writes {name: tensor} with optional {str: str} metadata. Tensors are written in name order."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        if not isinstance(t, torch.Tensor):
            raise SafetensorsError(f"tensor {name!r} is a {type(t).__name__}, expected a torch.Tensor")
        if t.dtype not in NAMES:
            raise SafetensorsError(f"tensor {name!r} has dtype {t.dtype}, which safetensors_io cannot write")
        data = t.detach().cpu().contiguous().reshape(-1)
        raw = data.view(torch.uint8).numpy().tobytes() if data.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise SafetensorsError(f"metadata entry {k!r} must map str to str (got {type(v).__name__})")
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # pad so the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def load(path):
    """Returns (tensors, metadata). Every offset and size is checked against the file."""
    with open(path, "rb") as f:
        blob = f.read()
    where = f"safetensors file {path}"
    if len(blob) < 8:
        raise SafetensorsError(f"{where} is {len(blob)} bytes long, too short for the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER_BYTES or 8 + n > len(blob):
        raise SafetensorsError(f"{where}: header length {n} does not fit in the file ({len(blob)} bytes); truncated or not safetensors")
    try:
        header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{where}: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{where}: header must be a JSON object")
    data = bytearray(blob[8 + n :])
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{where}: __metadata__ must map strings to strings")
    tensors = {}
    for name, info in header.items():
        try:
            dtype_name, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{where}: entry {name!r} needs dtype, shape and data_offsets [begin, end]") from None
        if dtype_name not in DTYPES:
            raise SafetensorsError(f"{where}: tensor {name!r} has unsupported dtype {dtype_name!r} (supported: {', '.join(DTYPES)})")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise SafetensorsError(f"{where}: tensor {name!r} has a bad shape {shape!r}")
        count = 1
        for d in shape:
            count *= d
        want = count * ITEM_SIZE[dtype_name]
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= len(data)):
            raise SafetensorsError(f"{where}: tensor {name!r} has offsets [{begin}, {end}] outside the {len(data)} data bytes; truncated?")
        if end - begin != want:
            raise SafetensorsError(f"{where}: tensor {name!r} of shape {shape} {dtype_name} needs {want} bytes, offsets give {end - begin}")
        if want == 0:
            tensors[name] = torch.empty(shape, dtype=DTYPES[dtype_name])
            continue
        flat = torch.frombuffer(data, dtype=torch.uint8, count=want, offset=begin)
        tensors[name] = flat.clone().view(DTYPES[dtype_name]).reshape(shape)
    return tensors, metadata
