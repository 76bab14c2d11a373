#!/usr/bin/env python3
"""Runs TemperedNet in PyTorch against tempered's files (used by test/pytorch-interop.test.ts).

  torch_interop.py logits MODEL.safetensors IMAGES.f32 OUT.f32
      Loads MODEL into TemperedNet (eval mode), runs the little-endian float32 images
      [n * 784, pixels in [0, 1]] and writes the logits [n * 10] as little-endian float32.
  torch_interop.py export SEED OUT.safetensors
      Saves a TemperedNet freshly initialised after torch.manual_seed(SEED).

Run with Debian's python3-torch: /usr/bin/python3 scripts/torch_interop.py ...
"""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree when tests run this
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from torch_net import TemperedNet, load_net, save_net, tensor_bytes  # noqa: E402


def logits(model_path, images_path, out_path):
    with open(images_path, "rb") as f:
        raw = bytearray(f.read())
    if len(raw) == 0 or len(raw) % (784 * 4):
        sys.exit(f"{images_path}: {len(raw)} bytes is not a whole number of 28x28 float32 images")
    images = torch.frombuffer(raw, dtype=torch.float32).reshape(-1, 1, 28, 28)
    net = load_net(model_path)
    with torch.no_grad():
        out = net(images)
    with open(out_path, "wb") as f:
        f.write(tensor_bytes(out.float()))


def export(seed, out_path):
    torch.manual_seed(seed)
    net = TemperedNet()
    save_net(out_path, net, {"source": "scripts/torch_interop.py export", "seed": str(seed),
                             "framework": "pytorch", "torch_version": torch.__version__})


def main(argv):
    if len(argv) == 4 and argv[0] == "logits":
        logits(*argv[1:])
    elif len(argv) == 3 and argv[0] == "export":
        export(int(argv[1]), argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
