"""PyTorch peer for `npm run bench`: the same network (scripts/torch_net.py), the same
thread count, the same batch sizes. Prints one JSON object on stdout.

usage: /usr/bin/python3 scripts/torch_bench.py --threads N --seconds S [--device cpu|cuda] [--arch SPEC.json]
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_net import TemperedNet  # noqa: E402


def rate(fn, units, seconds, device, reps=5):
    """Median units/s over `reps` timed runs of about seconds/reps each, after a warm-up."""
    def sync():
        if device == "cuda":
            torch.cuda.synchronize()
    for _ in range(3):
        fn()
    sync()
    results = []
    for _ in range(reps):
        count = 0
        t0 = time.perf_counter()
        while True:
            fn()
            count += 1
            sync()
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds / reps:
                break
        results.append(count * units / elapsed)
    return statistics.median(results)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--only", default="train,forward,input_gradient,sweep")
    p.add_argument("--arch", default=None, help="a tempered architecture spec (JSON file); default the paper's")
    args = p.parse_args()
    arch = None
    if args.arch:
        with open(args.arch) as f:
            arch = json.load(f)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # float32 on both sides: TF32 (10-bit mantissas on tensor cores) would make the ratio
    # compare different precisions; tempered runs cuDNN with FMA math and cuBLAS pedantic.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    net = TemperedNet(arch).to(dev)
    shape = net.arch["input"]
    c, h, w = shape["channels"], shape["height"], shape["width"]
    classes = net.arch["layers"][-1]["units"]
    last_fc = [name for kind, name in net.steps if kind == "dense"][-1]
    only = set(args.only.split(","))
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device}
    if args.device == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
        out["cudnn"] = torch.backends.cudnn.version()
    out["tf32"] = bool(torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32)

    x128 = torch.rand(128, c, h, w, device=dev)
    y128 = torch.randint(0, classes, (128,), device=dev)

    if "train" in only:
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.5, nesterov=True)
        net.train()

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x128), y128) + 0.01 * getattr(net, last_fc).weight.pow(2).sum()
            loss.backward()
            opt.step()
        out["train_samples_per_s"] = rate(step, 128, args.seconds, args.device)

    net.eval()
    if "forward" in only:
        with torch.no_grad():
            out["forward_images_per_s"] = rate(lambda: net(x128), 128, args.seconds, args.device)
            x1 = x128[:1].clone()
            out["forward1_images_per_s"] = rate(lambda: net(x1), 1, args.seconds, args.device)

    if "input_gradient" in only:
        def input_grad():
            x = x128.clone().requires_grad_(True)
            F.cross_entropy(net(x), y128, reduction="sum").backward()
            return x.grad
        out["input_gradient_samples_per_s"] = rate(input_grad, 128, args.seconds, args.device)

    if "sweep" in only:
        # Algorithm 2 by brute force: one image's 1,568 perturbations (every pixel set to 1,
        # then to 0) as one batch, and the per-sample loss of each.
        base = torch.rand(1, 1, 28, 28, device=dev)
        eye = torch.eye(784, device=dev).view(784, 1, 28, 28)
        label = torch.tensor([3], device=dev)

        def sweep():
            with torch.no_grad():
                ones = base * (1 - eye) + eye
                zeros = base * (1 - eye)
                batch = torch.cat([ones, zeros])
                return F.cross_entropy(net(batch), label.expand(1568), reduction="none")
        out["sweeps_per_s"] = rate(sweep, 1, args.seconds, args.device)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
