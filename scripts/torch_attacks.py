"""PyTorch peer for `npm run bench:attacks` (scripts/bench-attacks.js): the attacks of the
table ATTACKS below, each implemented in PyTorch from its definition in docs/algorithms.md,
batched, on the same model (scripts/torch_net.py from the same safetensors file) and the same
images. Prints one JSON object on stdout: per attack the seconds, the samples attacked and
fooled, and the gradient steps taken.

usage: /usr/bin/python3 scripts/torch_attacks.py --model FILE --images F32 --labels I32
           --threads N --epsilon E --steps S [--restarts R] [--target-classes K] [--only a,b]

The random starts are torch's (the numbers differ from tempered's counter-based ones), so the
outcomes agree in distribution, not sample by sample; the work per sample is the same
algorithm's.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_net import load_net  # noqa: E402


# ---------------------------------------------------------------- APGD (Croce & Hein 2020)

def apgd_checkpoints(steps):
    """w_j = ceil(p_j N), p in hundredths: p_1 = 22, p_{j+1} = p_j + max(p_j - p_{j-1} - 3, 6); 0 < w_j < N."""
    w, q_prev, q = [], 0, 22
    while q < 100:
        v = (q * steps + 99) // 100
        if 0 < v < steps and (not w or w[-1] != v):
            w.append(v)
        q_prev, q = q, q + max(q - q_prev - 3, 6)
    return w


def dlr_loss(z, y, target=None):
    zs, order = z.sort(dim=1, descending=True)
    zy = z.gather(1, y[:, None])[:, 0]
    if target is None:
        other = torch.where(order[:, 0] == y, zs[:, 1], zs[:, 0])
        den = zs[:, 0] - zs[:, 2] + 1e-12
    else:
        other = z.gather(1, target[:, None])[:, 0]
        den = zs[:, 0] - 0.5 * (zs[:, 2] + zs[:, 3]) + 1e-12
    return -(zy - other) / den


def apgd_run(net, x0, y, target, loss, eps, steps, temperature):
    """One run on samples x0 [m, C, H, W]: (fooled mask, steps taken per sample)."""
    m = x0.shape[0]
    w = set(apgd_checkpoints(steps))
    lo, hi = (x0 - eps).clamp(min=0), (x0 + eps).clamp(max=1)
    x = (x0 + (2 * torch.rand_like(x0) - 1) * eps).clamp(0, 1)
    x_prev, best, g_best = x.clone(), x.clone(), torch.zeros_like(x)
    f_max, f_prev, f_at_last = (torch.zeros(m) for _ in range(3))
    raised, reduced_last = torch.zeros(m), torch.zeros(m, dtype=torch.bool)
    eta = torch.full((m, 1, 1, 1), 2 * eps)
    fooled, taken = torch.zeros(m, dtype=torch.bool), torch.zeros(m, dtype=torch.long)
    live = torch.arange(m)
    last_w = 0
    for j in range(steps + 1):
        xl = x[live].clone().requires_grad_(j < steps)
        with torch.enable_grad():
            z = net(xl)
            if loss == "ce":
                f = F.cross_entropy(z / temperature, y[live], reduction="none")
            else:
                f = dlr_loss(z, y[live], None if target is None else target[live])
            g = torch.autograd.grad(f.sum(), xl)[0] if j < steps else None
        f = f.detach()
        hit = z.detach().argmax(1) != y[live]
        fooled[live[hit]] = True
        taken[live[hit]] = j
        keep = ~hit
        live, f = live[keep], f[keep]
        if live.numel() == 0:
            break
        if g is not None:
            g = g[keep]
        if j == 0:
            f_max[live] = f_prev[live] = f_at_last[live] = f
            best[live] = x[live]
            g_best[live] = g
        else:
            raised[live] += (f > f_prev[live]).float()
            new_max = f > f_max[live]
            nm = live[new_max]
            f_max[nm] = f[new_max]
            best[nm] = x[nm]
            if g is not None:
                g_best[nm] = g[new_max]
            f_prev[live] = f
            if j in w:
                halve = (raised[live] < 0.75 * (j - last_w)) | (~reduced_last[live] & ~(f_max[live] > f_at_last[live]))
                reduced_last[live] = halve
                f_at_last[live] = f_max[live]
                raised[live] = 0
                last_w = j
                h = live[halve]
                eta[h] /= 2
                x[h] = best[h]
                g[halve] = g_best[h]
                f_prev[h] = f_max[h]
        if j == steps:
            break
        xs, lo_l, hi_l = x[live], lo[live], hi[live]
        zc = torch.min(torch.max(xs + eta[live] * g.sign(), lo_l), hi_l)
        nxt = zc if j == 0 else torch.min(torch.max(xs + 0.75 * (zc - xs) + 0.25 * (xs - x_prev[live]), lo_l), hi_l)
        x_prev[live] = xs
        x[live] = nxt
    taken[~fooled] = steps
    return fooled, taken


def apgd(loss):
    def attack(net, x, y, a):
        with torch.no_grad():
            z0 = net(x)
        attacked = z0.argmax(1) == y
        fooled = torch.zeros(len(y), dtype=torch.bool)
        steps = torch.zeros(len(y), dtype=torch.long)
        if loss == "dlr-targeted":
            others = z0.clone()
            others[torch.arange(len(y)), y] = -float("inf")
            order = others.argsort(dim=1, descending=True)
            targets = [order[:, t] for t in range(min(a.target_classes, z0.shape[1] - 1))]
        else:
            targets = [None]
        for t in targets:
            for _ in range(a.restarts):
                idx = (attacked & ~fooled).nonzero()[:, 0]
                if idx.numel() == 0:
                    break
                f, s = apgd_run(net, x[idx], y[idx], None if t is None else t[idx], loss, a.epsilon, a.steps, 1.0)
                steps[idx] += s
                fooled[idx] = f
        return attacked, fooled, steps
    return attack


# One entry per attack, by its registry id.
ATTACKS = {
    "apgd-ce": apgd("ce"),
    "apgd-dlr": apgd("dlr"),
    "apgd-t": apgd("dlr-targeted"),
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--images", required=True, help="float32 NHWC, raw")
    p.add_argument("--labels", required=True, help="int32, raw")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--epsilon", type=float, default=0.3)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--target-classes", type=int, default=9)
    p.add_argument("--only", default=",".join(ATTACKS))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = load_net(a.model)
    shape = net.arch["input"]
    c, h, w = shape["channels"], shape["height"], shape["width"]
    x = torch.from_numpy(np.fromfile(a.images, dtype=np.float32).copy()).view(-1, h, w, c).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.fromfile(a.labels, dtype=np.int32).astype(np.int64))
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "attacks": {}}
    for name in a.only.split(","):
        t0 = time.perf_counter()
        attacked, fooled, steps = ATTACKS[name](net, x, y, a)
        seconds = time.perf_counter() - t0
        out["attacks"][name] = {
            "seconds": seconds,
            "samples": len(y),
            "attacked": int(attacked.sum()),
            "fooled": int(fooled.sum()),
            "steps": int(steps[attacked].sum()),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
