"""Any tempered network (the MNIST CNN of Song (2017) by default) in PyTorch, built from the
same architecture spec, and safetensors I/O without the `safetensors` package.

TemperedNet's attribute names (conv1.., fc1..) make its state_dict names and tensor layouts
identical to tempered's native parameterLayout(arch), so a file written by either side loads
into the other. Standalone: needs only torch (Debian: python3-torch, /usr/bin/python3).
"""

import ctypes
import json
import os
import secrets
import struct
import sys

import torch
from torch import nn
import torch.nn.functional as F


PAPER_MNIST = {
    "input": {"channels": 1, "height": 28, "width": 28},
    "layers": [{"type": "conv", "filters": 32}, {"type": "relu"}, {"type": "conv", "filters": 32}, {"type": "relu"},
               {"type": "maxpool"}, {"type": "conv", "filters": 64}, {"type": "relu"},
               {"type": "conv", "filters": 64}, {"type": "relu"}, {"type": "maxpool"}, {"type": "flatten"},
               {"type": "dropout", "rate": 0.5}, {"type": "dense", "units": 200}, {"type": "relu"},
               {"type": "dropout", "rate": 0.5}, {"type": "dense", "units": 200}, {"type": "relu"},
               {"type": "dropout", "rate": 0.5}, {"type": "dense", "units": 10}],
}


class TemperedNet(nn.Module):
    """The network of a tempered architecture spec (the JSON of lib/arch.ts, as a model file's
    __metadata__.arch holds it; the paper's network by default). Input [n, C, H, W] (PyTorch's
    order; tempered's images are [n, H, W, C]: permute(0, 3, 1, 2)), pixels in [0, 1]; output
    logits (temperature is applied outside the network, in the softmax). Convolutions are
    conv1, conv2, ..., dense layers fc1, fc2, ...: the state_dict names of the model file."""

    def __init__(self, arch=None, dropout=None):
        super().__init__()
        self.arch = arch or PAPER_MNIST
        c, h, w = (self.arch["input"][k] for k in ("channels", "height", "width"))
        self.steps = []  # (kind, attribute name or argument)
        convs = denses = 0
        features = None
        for layer in self.arch["layers"]:
            kind = layer["type"]
            if kind == "conv":
                if layer.get("kernel", 3) != 3:
                    raise ValueError("only 3x3 convolutions")
                convs += 1
                pad = 1 if layer.get("padding", "valid") == "same" else 0
                setattr(self, f"conv{convs}", nn.Conv2d(c, layer["filters"], 3, padding=pad))
                self.steps.append(("conv", f"conv{convs}"))
                c, h, w = layer["filters"], h + 2 * pad - 2, w + 2 * pad - 2
            elif kind == "maxpool":
                self.steps.append(("maxpool", None))
                h, w = h // 2, w // 2
            elif kind == "flatten":
                self.steps.append(("flatten", None))
                features = c * h * w
            elif kind == "dense":
                denses += 1
                setattr(self, f"fc{denses}", nn.Linear(features, layer["units"]))
                self.steps.append(("dense", f"fc{denses}"))
                features = layer["units"]
            elif kind == "dropout":
                self.steps.append(("dropout", dropout if dropout is not None else layer["rate"]))
            elif kind == "relu":
                self.steps.append(("relu", None))
            else:
                raise ValueError(f"unknown layer type {kind!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for kind, arg in self.steps:
            if kind in ("conv", "dense"):
                x = getattr(self, arg)(x)
            elif kind == "relu":
                x = F.relu(x)
            elif kind == "maxpool":
                x = F.max_pool2d(x, 2)
            elif kind == "flatten":
                x = torch.flatten(x, 1)  # (C, H, W) order, as the native engine flattens
            elif kind == "dropout":
                x = F.dropout(x, arg, self.training)
        return x


# --- safetensors ------------------------------------------------------------------------
# 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
# optional "__metadata__": {str: str}, then the data section (offsets relative to its start).

_DTYPES = {
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
_NAMES = {v: k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


def _check_little_endian():
    # The format is little-endian; so is every platform torch ships for. Refuse rather than
    # silently byte-swap wrongly.
    if sys.byteorder != "little":
        raise RuntimeError("safetensors I/O here assumes a little-endian host")


def tensor_bytes(t):
    """The raw (native-endian) bytes of a tensor, copied to a contiguous CPU tensor first.
    ctypes rather than .numpy(): works for bfloat16 and without numpy."""
    t = t.detach().to("cpu").contiguous()
    nbytes = t.numel() * t.element_size()
    return ctypes.string_at(t.data_ptr(), nbytes) if nbytes else b""


def load_safetensors(path):
    """Returns (tensors: dict name -> CPU tensor, in file order; metadata: dict str -> str)."""
    _check_little_endian()
    with open(path, "rb") as f:
        buf = bytearray(f.read())  # writable, so torch.frombuffer does not warn
    if len(buf) < 8:
        raise ValueError(f"{path}: too short to be a safetensors file")
    (n,) = struct.unpack("<Q", buf[:8])
    if n == 0 or n > _MAX_HEADER or 8 + n > len(buf):
        raise ValueError(f"{path}: bad header length {n}")
    header = json.loads(buf[8 : 8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    start, data_len = 8 + n, len(buf) - 8 - n
    tensors = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']!r}")
        shape = [int(d) for d in info["shape"]]
        begin, end = (int(o) for o in info["data_offsets"])
        count = 1
        for d in shape:
            count *= d
        item = torch.empty((), dtype=dtype).element_size()
        if not 0 <= begin <= end <= data_len or end - begin != count * item:
            raise ValueError(f"{path}: tensor {name!r} has bad data_offsets {info['data_offsets']}")
        if count == 0:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            # clone(): own the memory instead of pinning the whole file's buffer.
            flat = torch.frombuffer(buf, dtype=dtype, count=count, offset=start + begin)
            tensors[name] = flat.reshape(shape).clone()
    return tensors, dict(metadata)


def save_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} (in dict order) atomically: temp file in the same folder, fsync, rename."""
    _check_little_endian()
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        if t.dtype not in _NAMES:
            raise ValueError(f"tensor {name!r}: unsupported dtype {t.dtype}")
        chunks.append(tensor_bytes(t))
        nbytes = len(chunks[-1])
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)  # pad to 8 bytes, as the reference does
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    # os.open with 0o666 (not mkstemp's 0o600) so the file gets the usual umask permissions.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_net(path, strict=True):
    """A TemperedNet in eval mode holding the weights of a safetensors file (any float dtype),
    of the architecture its __metadata__.arch declares (format 2; the paper's without one)."""
    tensors, metadata = load_safetensors(path)
    net = TemperedNet(json.loads(metadata["arch"]) if "arch" in metadata else None)
    net.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=strict)
    return net.eval()


def save_net(path, net, metadata=None):
    """Writes the weights, with the network's spec as __metadata__.arch (format 2)."""
    meta = dict(metadata or {})
    meta.setdefault("arch", json.dumps(net.arch))
    meta.setdefault("format_version", "2")
    save_safetensors(path, {k: v.float() for k, v in net.state_dict().items()}, meta)
