"""Minimal safetensors reader/writer (the format: u64 header length, JSON header, raw little-endian data)."""
import json, struct
import numpy as np
import torch

_DT = {"F32": (torch.float32, np.float32), "I64": (torch.int64, np.int64), "F64": (torch.float64, np.float64),
       "I32": (torch.int32, np.int32), "BOOL": (torch.bool, np.bool_)}
_NAME = {v[0]: k for k, v in _DT.items()}


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        if v["dtype"] == "BF16":
            raw = np.frombuffer(data[b:e], dtype=np.uint16).astype(np.uint32) << 16
            t = torch.from_numpy(raw.view(np.float32).copy()).to(torch.bfloat16)
        else:
            tdt, ndt = _DT[v["dtype"]]
            t = torch.from_numpy(np.frombuffer(data[b:e], dtype=ndt).copy())
        out[k] = t.reshape(v["shape"])
    return out


def write(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for k in sorted(tensors):
        t = tensors[k].detach().contiguous().cpu()
        raw = t.numpy().tobytes()
        header[k] = {"dtype": _NAME[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
