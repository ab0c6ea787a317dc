"""Shared pieces of the PyTorch peers: a float32 safetensors reader and the Llama/Qwen2 ops (RMSNorm, RoPE's
rotate_half), so every peer reads Cohort's files and computes the model the same way.

Tensors are read one by one straight into torch storage (no second copy), so the peak RSS is the model's.
"""

import json
import struct

import torch


def read_safetensors(path):
    out = {}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0] if kv[0] != "__metadata__" else -1):
            if name == "__metadata__":
                continue
            assert info["dtype"] == "F32", info["dtype"]
            a, b = info["data_offsets"]
            t = torch.empty(info["shape"], dtype=torch.float32)
            f.seek(base + a)
            f.readinto(memoryview(t.numpy()).cast("B"))
            assert t.numel() * 4 == b - a
            out[name] = t
    return out


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)
