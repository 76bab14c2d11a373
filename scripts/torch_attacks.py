"""PyTorch peer for `npm run bench:attacks` (scripts/bench-attacks.js): the attacks of the
table ATTACKS below, each implemented in PyTorch from its definition in docs/algorithms.md,
batched, on the same model (scripts/torch_net.py from the same safetensors file) and the same
images. Every attack takes the options of its runAttack entry in bench-attacks.js (the same
names), attacks the samples the model classifies correctly, and returns (attacked, fooled,
work) per sample, the work being what bench-attacks.js counts for it: APGD's gradient steps
taken, Square's queries used, C&W's gradient evaluations (steps x constants). Prints one JSON
object on stdout: per attack the seconds, the samples attacked and fooled, and the work.

usage: /usr/bin/python3 scripts/torch_attacks.py --model FILE --images F32 --labels I32
           --threads N --attacks JSON
JSON: a list of {"id": ..., "options": {...}}, in the order to run them.
Images: the raw float32 [n][H][W][C] (NHWC, as tempered holds them); labels raw int32 [n].

The random draws are torch's (the numbers differ from tempered's counter-based ones), so the
outcomes agree in distribution, not sample by sample; the work per sample is the same
algorithm's.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_net import load_net  # noqa: E402


def correct(net, x, y):
    """The samples the model classifies correctly: the ones attacked (runAttack skips the others)."""
    with torch.no_grad():
        return net(x).argmax(1) == y


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
    def attack(net, x, y, o):
        restarts, target_classes = o.get("restarts", 1), o.get("targetClasses", 9)
        with torch.no_grad():
            z0 = net(x)
        attacked = z0.argmax(1) == y
        fooled = torch.zeros(len(y), dtype=torch.bool)
        steps = torch.zeros(len(y), dtype=torch.long)
        if loss == "dlr-targeted":
            others = z0.clone()
            others[torch.arange(len(y)), y] = -float("inf")
            order = others.argsort(dim=1, descending=True)
            targets = [order[:, t] for t in range(min(target_classes, z0.shape[1] - 1))]
        else:
            targets = [None]
        for t in targets:
            for _ in range(restarts):
                idx = (attacked & ~fooled).nonzero()[:, 0]
                if idx.numel() == 0:
                    break
                f, s = apgd_run(net, x[idx], y[idx], None if t is None else t[idx], loss, o["epsilon"], o["steps"], 1.0)
                steps[idx] += s
                fooled[idx] = f
        return attacked, fooled, steps
    return attack


# ---------------------------------------------------------------- Square (Andriushchenko et al. 2020)
# and Carlini-Wagner L2 (Carlini & Wagner 2017)

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


def square_run(net, x, y, s):
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


def cw_l2_run(net, x, y, s):
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


def square(net, x, y, o):
    attacked = correct(net, x, y)
    idx = attacked.nonzero()[:, 0]
    fooled, queries = torch.zeros(len(y), dtype=torch.bool), torch.zeros(len(y), dtype=torch.long)
    if idx.numel():
        f, used = square_run(net, x[idx], y[idx], {"seed": 0, **o})
        fooled[idx], queries[idx] = f, used
    return attacked, fooled, queries


def cw_l2(net, x, y, o):
    attacked = correct(net, x, y)
    idx = attacked.nonzero()[:, 0]
    fooled, evaluations = torch.zeros(len(y), dtype=torch.bool), torch.zeros(len(y), dtype=torch.long)
    if idx.numel():
        fooled[idx], _ = cw_l2_run(net, x[idx], y[idx], o)
        evaluations[idx] = o["steps"] * o["searchSteps"]  # every step of every round runs
    return attacked, fooled, evaluations


# One entry per attack, by its registry id.
ATTACKS = {
    "apgd-ce": apgd("ce"),
    "apgd-dlr": apgd("dlr"),
    "apgd-t": apgd("dlr-targeted"),
    "square": square,
    "cw-l2": cw_l2,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--images", required=True, help="float32 NHWC, raw")
    p.add_argument("--labels", required=True, help="int32, raw")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--attacks", required=True, help="JSON list of {id, options}")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = load_net(a.model)
    shape = net.arch["input"]
    c, h, w = shape["channels"], shape["height"], shape["width"]
    x = torch.from_numpy(np.fromfile(a.images, dtype=np.float32).copy()).view(-1, h, w, c).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.fromfile(a.labels, dtype=np.int32).astype(np.int64))
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "attacks": {}}
    for entry in json.loads(a.attacks):
        name = entry["id"]
        t0 = time.perf_counter()
        attacked, fooled, work = ATTACKS[name](net, x, y, entry["options"])
        seconds = time.perf_counter() - t0
        out["attacks"][name] = {
            "seconds": seconds,
            "samples": len(y),
            "attacked": int(attacked.sum()),
            "fooled": int(fooled.sum()),
            "work": int(work[attacked].sum()),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
