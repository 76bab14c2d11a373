"""Exports the network (scripts/torch_net.py) with the weights of a safetensors file to ONNX, for
the ONNX Runtime peer of `npm run bench`. Input `images` [n, 1, 28, 28], output `logits` [n, 10];
the batch size is free. Needs only torch (Debian: python3-torch, /usr/bin/python3).

usage: /usr/bin/python3 scripts/onnx_export.py WEIGHTS.safetensors OUT.onnx
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_net import load_net  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    weights, out = sys.argv[1], sys.argv[2]
    net = load_net(weights)  # eval mode: dropout is the identity and is left out of the graph
    example = torch.zeros(2, 1, 28, 28)
    with torch.no_grad():
        torch.onnx.export(
            net,
            example,
            out,
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}},
            opset_version=13,
            do_constant_folding=True,
        )
    print(out)


if __name__ == "__main__":
    main()
