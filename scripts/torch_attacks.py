"""PyTorch peer for `npm run bench:attacks`: the same attack (docs/algorithms.md) on the same
network (scripts/torch_net.py, the weights of the model file) and the same images, with the
same thread count. One entry per attack in ATTACKS. Prints one JSON object on stdout.

usage: /usr/bin/python3 scripts/torch_attacks.py --attack square|cw-l2 --model FILE --images F32 --labels I32
                        --threads N --settings JSON
Images: the raw float32 [n][28][28][1] (NHWC, as tempered holds them); labels raw int32 [n].
"""
import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_net import TemperedNet, load_safetensors  # noqa: E402


def margin(z, y):
    """z_y - max_{j != y} z_j per row."""
    zy = z.gather(1, y[:, None])[:, 0]
    other = z.clone()
    other.scatter_(1, y[:, None], -math.inf)
    return zy - other.max(1).values


def fraction(p_init, it, queries):
    scaled = it * 10000 // queries
    p = p_init
    for end in (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000):
        if scaled > end:
            p /= 2
    return p


def square(net, x, y, s):
    """The L-infinity Square attack as docs/algorithms.md defines it, batched over the samples
    still being attacked, torch's own generator for the draws."""
    eps, queries, p_init = s["epsilon"], s["queries"], s["pInit"]
    gen = torch.Generator().manual_seed(s.get("seed", 0))
    n, c, h, w = x.shape
    signs = torch.where(torch.rand(n, c, 1, w, generator=gen) < 0.5, -eps, eps)
    best = (x + signs).clamp(0, 1)
    with torch.no_grad():
        z = net(best)
    best_m = margin(z, y)
    fooled = z.argmax(1) != y
    used = torch.ones(n, dtype=torch.long)
    for q in range(2, queries + 1):
        idx = (~fooled).nonzero()[:, 0]
        if idx.numel() == 0:
            break
        side = min(max(int(round(math.sqrt(fraction(p_init, q - 2, queries) * h * w))), 1), max(min(h, w) - 1, 1))
        cand = best[idx].clone()
        xi = x[idx]
        for k in range(idx.numel()):
            r0 = int(torch.randint(0, h - side + 1, (1,), generator=gen))
            c0 = int(torch.randint(0, w - side + 1, (1,), generator=gen))
            window = xi[k, :, r0:r0 + side, c0:c0 + side]
            for _ in range(32):
                sg = torch.where(torch.rand(c, 1, 1, generator=gen) < 0.5, -eps, eps)
                new = (window + sg).clamp(0, 1)
                if not torch.equal(new, cand[k, :, r0:r0 + side, c0:c0 + side]):
                    break
            cand[k, :, r0:r0 + side, c0:c0 + side] = new
        with torch.no_grad():
            zc = net(cand)
        m = margin(zc, y[idx])
        better = m < best_m[idx]
        best[idx[better]] = cand[better]
        best_m[idx[better]] = m[better]
        fooled[idx[better]] = zc[better].argmax(1) != y[idx[better]]
        used[idx] = q
    return fooled, used


def cw_l2(net, x, y, s):
    """Carlini-Wagner L2 as docs/algorithms.md defines it: tanh space, Adam (torch.optim.Adam
    is Kingma & Ba's form), binary search over a per-sample c, in float32."""
    steps, rounds, lr, kappa = s["steps"], s["searchSteps"], s["learningRate"], s["confidence"]
    n = x.shape[0]
    w0 = torch.atanh((2 * x - 1) * (1 - 1e-6))
    lower = torch.zeros(n, dtype=torch.float64)
    upper = torch.full((n,), 1e10, dtype=torch.float64)
    c = torch.full((n,), s["initialConst"], dtype=torch.float64)
    best_l2 = torch.full((n,), math.inf)
    onehot = torch.nn.functional.one_hot(y, 10).bool()
    for _ in range(rounds):
        w = w0.clone().requires_grad_(True)
        opt = torch.optim.Adam([w], lr=lr, betas=(0.9, 0.999), eps=1e-8)
        ok = torch.zeros(n, dtype=torch.bool)
        cf = c.float()
        for _ in range(steps):
            img = (torch.tanh(w) + 1) / 2
            z = net(img)
            dist = ((img - x) ** 2).flatten(1).sum(1)
            m = margin(z, y)
            loss = (dist + cf * torch.clamp(m, min=-kappa)).sum()
            with torch.no_grad():
                success = (z + kappa * onehot).argmax(1) != y
                ok |= success
                l2 = dist.sqrt()
                best_l2 = torch.where(success & (l2 < best_l2), l2, best_l2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        upper = torch.where(ok, torch.minimum(upper, c), upper)
        lower = torch.where(ok, lower, torch.maximum(lower, c))
        c = torch.where(ok | (upper < 1e10), (lower + upper) / 2, c * 10)
    return torch.isfinite(best_l2), best_l2


ATTACKS = {"square": square, "cw-l2": cw_l2}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--attack", required=True, choices=sorted(ATTACKS))
    p.add_argument("--model", required=True)
    p.add_argument("--images", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--settings", required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    tensors, metadata = load_safetensors(args.model)
    arch = json.loads(metadata["arch"]) if "arch" in metadata else None
    net = TemperedNet(arch)
    net.load_state_dict({k: v for k, v in tensors.items() if k in net.state_dict()})
    net.eval()
    with open(args.images, "rb") as f:
        images = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    with open(args.labels, "rb") as f:
        labels = torch.frombuffer(bytearray(f.read()), dtype=torch.int32).long()
    shape = net.arch["input"]
    n = labels.numel()
    x = images.view(n, shape["height"], shape["width"], shape["channels"]).permute(0, 3, 1, 2).contiguous()
    settings = json.loads(args.settings)
    fn = ATTACKS[args.attack]
    t0 = time.perf_counter()
    success, _ = fn(net, x, labels, settings)
    seconds = time.perf_counter() - t0
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "samplesPerS": n / seconds,
                      "seconds": seconds, "successes": int(success.sum())}))


if __name__ == "__main__":
    main()
