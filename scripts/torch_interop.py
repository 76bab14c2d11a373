#!/usr/bin/env python3
"""Runs TemperedNet in PyTorch against tempered's files (used by test/pytorch-interop.test.ts).

  torch_interop.py logits MODEL.safetensors IMAGES.f32 OUT.f32
      Loads MODEL into TemperedNet (eval mode; the architecture its metadata declares), runs
      the little-endian float32 images [n][h][w][c] (tempered's NHWC, pixels in [0, 1]) and
      writes the logits [n * classes] as little-endian float32.
  torch_interop.py export SEED OUT.safetensors [ARCH.json]
      Saves a TemperedNet (of ARCH, the paper's by default) freshly initialised after
      torch.manual_seed(SEED).

Run with Debian's python3-torch: /usr/bin/python3 scripts/torch_interop.py ...
"""

import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree when tests run this
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from torch_net import TemperedNet, load_net, save_net, tensor_bytes  # noqa: E402


def logits(model_path, images_path, out_path):
    net = load_net(model_path)
    shape = net.arch["input"]
    c, h, w = shape["channels"], shape["height"], shape["width"]
    with open(images_path, "rb") as f:
        raw = bytearray(f.read())
    if len(raw) == 0 or len(raw) % (c * h * w * 4):
        sys.exit(f"{images_path}: {len(raw)} bytes is not a whole number of {h}x{w}x{c} float32 images")
    # tempered's images are NHWC; PyTorch's convolutions take NCHW.
    images = torch.frombuffer(raw, dtype=torch.float32).reshape(-1, h, w, c).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        out = net(images)
    with open(out_path, "wb") as f:
        f.write(tensor_bytes(out.float()))


def export(seed, out_path, arch_path=None):
    torch.manual_seed(seed)
    arch = None
    if arch_path:
        with open(arch_path) as f:
            arch = json.load(f)
    net = TemperedNet(arch)
    save_net(out_path, net, {"source": "scripts/torch_interop.py export", "seed": str(seed),
                             "framework": "pytorch", "torch_version": torch.__version__})


def main(argv):
    if len(argv) == 4 and argv[0] == "logits":
        logits(*argv[1:])
    elif len(argv) in (3, 4) and argv[0] == "export":
        export(int(argv[1]), *argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
