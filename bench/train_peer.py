#!/usr/bin/env python3
"""PyTorch CPU peer of `npm run bench:train` (bench/train.ts): one ViLT VQA training step (forward, BCE loss x answers,
backward, AdamW) per method on the same shapes as aptune's step (bench/train-step.ts).

What it is: a compact float32 ViLT (pre-norm ViT blocks, fused qkv, GELU MLP, BERT text embeddings, 32x32 patch conv,
pooler, VQA classifier) with the methods apt (M=200, h=4 after each attention output), deep_prompt (200 tokens per
layer), lora (r=4 on q and v) and classifier_only, following scripts/make_parity_fixtures.py (the parity reference) but
in float32, with nn.Parameters, dropout 0.1 where aptune's ViLT has it (not on attention probabilities), and a frozen
backbone.
Does not: load weights or data (random; the cost does not depend on them), or choose thread settings (the caller sets
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS in the environment before torch starts).
Output: one JSON line {"torch": version, "threads": {...}, "results": {method: {"ms": [..], "maxrss_mb": n}}}.
Run: /usr/bin/python3 bench/train_peer.py --config small|base --methods apt,lora --steps 3 --warmup 1
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

CONFIGS = {
    "small": dict(D=256, H=4, L=4, mlp=1024),
    "base": dict(D=768, H=12, L=12, mlp=3072),
}


def build(cfg, method, answers, vocab=30522, text_len=40, patch=32, grid=12, M=200, h=4, r=4, prompts=200):
    D, L = cfg["D"], cfg["L"]
    g = torch.Generator().manual_seed(0)
    P = {}

    def p(name, *shape, std=0.02, train=False, zero=False):
        t = torch.zeros(*shape) if zero else torch.randn(*shape, generator=g) * std
        P[name] = torch.nn.Parameter(t, requires_grad=train)

    p("word", vocab, D); p("tpos", text_len, D); p("ttype", 2, D); p("tln.w", D, zero=True); p("tln.b", D, zero=True)
    P["tln.w"].data += 1
    p("mtype", 2, D); p("cls", 1, 1, D); p("pos", 1, 1 + grid * grid, D)
    p("patch.w", D, 3, patch, patch); p("patch.b", D, zero=True)
    for i in range(L):
        for n in ("n1", "n2"):
            p(f"{i}.{n}.w", D, zero=True); P[f"{i}.{n}.w"].data += 1; p(f"{i}.{n}.b", D, zero=True)
        p(f"{i}.qkv.w", 3 * D, D); p(f"{i}.qkv.b", 3 * D, zero=True)
        p(f"{i}.proj.w", D, D); p(f"{i}.proj.b", D, zero=True)
        p(f"{i}.fc1.w", cfg["mlp"], D); p(f"{i}.fc1.b", cfg["mlp"], zero=True)
        p(f"{i}.fc2.w", D, cfg["mlp"]); p(f"{i}.fc2.b", D, zero=True)
        if method == "apt":
            p(f"{i}.apt.tok", M, D, train=True); p(f"{i}.apt.a", h, D, std=1.0, train=True)
            p(f"{i}.apt.b", D, h, zero=True, train=True); p(f"{i}.apt.s", 1, zero=True, train=True)
        if method == "lora":
            for qv in ("q", "v"):
                p(f"{i}.{qv}.A", D, r, std=1.0, train=True); p(f"{i}.{qv}.B", r, D, zero=True, train=True)
    if method == "deep_prompt":
        p("prompt", L, 1, prompts, D, train=True)
    p("norm.w", D, zero=True); P["norm.w"].data += 1; p("norm.b", D, zero=True)
    p("pool.w", D, D, train=True); p("pool.b", D, zero=True, train=True)
    p("tok4cls", 1, 1, D, train=True)
    p("c0.w", 2 * D, D, train=True); p("c0.b", 2 * D, zero=True, train=True)
    p("c1.w", 2 * D, zero=True, train=True); P["c1.w"].data += 1; p("c1.b", 2 * D, zero=True, train=True)
    p("c3.w", answers, 2 * D, train=True); p("c3.b", answers, zero=True, train=True)
    return P


def forward(P, cfg, method, ids, img, drop=0.1):
    D, H, L = cfg["D"], cfg["H"], cfg["L"]
    B, T = ids.shape
    t = F.embedding(ids, P["word"]) + P["ttype"][0] + P["tpos"][:T]
    t = F.layer_norm(t, (D,), P["tln.w"], P["tln.b"], 1e-12)
    t = torch.cat([P["tok4cls"].expand(B, -1, -1), t[:, 1:]], 1)
    v = F.conv2d(img, P["patch.w"], P["patch.b"], stride=32).flatten(2).transpose(1, 2)  # [B, 144, D]
    v = torch.cat([P["cls"].expand(B, -1, -1), v], 1) + P["pos"]
    x = torch.cat([t + P["mtype"][0], v + P["mtype"][1]], 1)  # [B, 185, D]
    x = F.dropout(x, drop, True)
    n = x.shape[1]
    for i in range(L):
        xa = torch.cat([x, P["prompt"][i].expand(B, -1, -1)], 1) if method == "deep_prompt" else x
        hh = F.layer_norm(xa, (D,), P[f"{i}.n1.w"], P[f"{i}.n1.b"], 1e-6)
        qkv = F.linear(hh, P[f"{i}.qkv.w"], P[f"{i}.qkv.b"])
        q, k, vv = qkv[..., :D], qkv[..., D:2 * D], qkv[..., 2 * D:]
        if method == "lora":
            q = q + hh @ P[f"{i}.q.A"] @ P[f"{i}.q.B"]
            vv = vv + hh @ P[f"{i}.v.A"] @ P[f"{i}.v.B"]
        q = q[:, :n]
        sp = lambda z: z.reshape(B, z.shape[1], H, D // H).permute(0, 2, 1, 3)
        att = (sp(q) @ sp(k).transpose(-2, -1)) * (D // H) ** -0.5
        att = att.softmax(-1)  # no dropout on the probabilities: ViLT's attn_drop_rate is 0 (apt-spec §1.1), as in aptune
        ctx = (att @ sp(vv)).permute(0, 2, 1, 3).reshape(B, n, D)
        out = F.linear(ctx, P[f"{i}.proj.w"], P[f"{i}.proj.b"])
        if method == "apt":
            tok = P[f"{i}.apt.tok"]
            keys = tok + F.linear(F.linear(tok, P[f"{i}.apt.a"]), P[f"{i}.apt.b"])
            s = F.relu(hh[:, :n] @ keys.t())
            out = (out + (s @ tok) * s.max(-1, keepdim=True)[0].detach()) * torch.exp(P[f"{i}.apt.s"])
        x = x + F.dropout(out, drop, True)
        m = F.layer_norm(x, (D,), P[f"{i}.n2.w"], P[f"{i}.n2.b"], 1e-6)
        m = F.dropout(F.gelu(F.linear(m, P[f"{i}.fc1.w"], P[f"{i}.fc1.b"])), drop, True)
        x = x + F.dropout(F.linear(m, P[f"{i}.fc2.w"], P[f"{i}.fc2.b"]), drop, True)
    x = F.layer_norm(x, (D,), P["norm.w"], P["norm.b"], 1e-6)
    c = torch.tanh(F.linear(x[:, 0], P["pool.w"], P["pool.b"]))
    c = F.gelu(F.layer_norm(F.linear(c, P["c0.w"], P["c0.b"]), (2 * D,), P["c1.w"], P["c1.b"], 1e-5))
    return F.linear(c, P["c3.w"], P["c3.b"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="small", choices=list(CONFIGS))
    ap.add_argument("--methods", default="apt,deep_prompt,lora,classifier_only")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--answers", type=int, default=3129)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args()
    cfg = CONFIGS[a.config]
    torch.manual_seed(0)
    ids = torch.randint(1000, 20000, (a.batch, 40))
    img = torch.randn(a.batch, 3, 384, 384)
    tgt = torch.rand(a.batch, a.answers) * (torch.rand(a.batch, a.answers) > 0.999)
    res = {}
    for method in a.methods.split(","):
        P = build(cfg, method, a.answers)
        params = [t for t in P.values() if t.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.98))
        times = []
        for s in range(a.warmup + a.steps):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            logits = forward(P, cfg, method, ids, img)
            loss = F.binary_cross_entropy_with_logits(logits, tgt) * a.answers
            loss.backward()
            opt.step()
            if s >= a.warmup:
                times.append((time.perf_counter() - t0) * 1000)
        res[method] = {"ms": times, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        del P, params, opt
    print(json.dumps({"torch": torch.__version__, "threads": {"torch": torch.get_num_threads(),
                      "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                      "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")}, "results": res}))


if __name__ == "__main__":
    sys.exit(main())
