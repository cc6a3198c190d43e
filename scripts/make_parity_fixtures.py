#!/usr/bin/env python3
"""Parity fixtures: tiny ViLT and tiny METER with every PETL method of apt-spec §3, in plain PyTorch.

What it is: an independent reimplementation, from /work/shared/reference/apt-spec.md §1-§4 and §6.3, of the two
backbones, their VQA/NLVR2 heads and the methods apt, deep_prompt, shallow_prompt, lora, adapter, parallel_adapter,
classifier_only and full, with the parameter names of the reference checkpoints and of the APT repository's modules.
It writes test/fixtures/parity/*.safetensors (format: test/fixtures/parity/FORMAT.md): weights, inputs, outputs,
loss, gradients of every trainable parameter, and the losses of 5 hand-written HF-AdamW steps.

What it deliberately does not do: no transformers/timm (nothing is imported from the reference code), no dropout
(every p = 0), no ViLT patch sampling (images are fully valid, so every patch is kept in raster order), no
mixed precision, no per-group learning rates (one lr group). It runs on CPU only.

Invariants:
- all math in float64; every stored parameter/input is first rounded to float32 and the computation uses exactly
  those rounded values, so the fixture's params reproduce its outputs;
- fixed seeds: running it twice gives byte-identical files (same torch version);
- files are written to a temp file and renamed; every written case is reloaded from the files alone and re-run in
  float32 (outputs, gradients, 5 AdamW losses within 1e-4 of max|ref| per tensor), or the script fails.

Run: /usr/bin/python3 scripts/make_parity_fixtures.py   (Debian's python3-torch; takes a few seconds)
"""

import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "test", "fixtures", "parity")
FORMAT = "aptune-parity-1"

# ----------------------------------------------------------------------------------------------------------------
# Tiny configurations (shared with the TS side through the fixture metadata; these are authoritative)
# ----------------------------------------------------------------------------------------------------------------

VILT_TINY = {
    "hidden_size": 64, "num_heads": 4, "num_layers": 2, "mlp_dim": 256, "vocab_size": 64,
    "max_text_len": 8, "text_len": 8, "patch_size": 8, "pos_grid": 3, "image_height": 16, "image_width": 24,
    "ln_eps": 1e-6, "text_ln_eps": 1e-12, "head_ln_eps": 1e-5, "pad_token_id": 0, "batch": 2,
    "vqa_answers": 7, "activation": "gelu_erf", "qkv_bias": True,
}

METER_TINY = {
    "hidden_size": 64, "num_heads": 4, "num_top_layer": 2, "fusion_intermediate": 256, "fusion_ln_eps": 1e-12,
    "fusion_mask_value": -10000.0, "head_ln_eps": 1e-5, "text_len": 8, "batch": 2, "vqa_answers": 7,
    "clip": {"width": 64, "heads": 4, "patch_size": 8, "blocks": 2, "image_size": 16, "mlp_dim": 256,
             "ln_eps": 1e-5, "activation": "quick_gelu"},
    "roberta": {"vocab_size": 64, "hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate": 256,
                "max_positions": 18, "pad_token_id": 1, "type_vocab_size": 1, "ln_eps": 1e-5,
                "activation": "gelu_erf", "mask_value": -10000.0},
}

METHOD_CONFIG = {
    "apt": {"M": 6, "h": 2},
    "deep_prompt": {"num_prompts": 4},
    "shallow_prompt": {"num_prompts": 4},
    "lora": {"r": 2, "scale": 1.0},
    "adapter": {"r": 8},
    "parallel_adapter": {"r": 8, "scale": 4.0, "ln_eps": 1e-5},
    "classifier_only": {},
    "full": {},
}
METHODS = list(METHOD_CONFIG)

# §3.0: trainable substrings. METER APT uses 'APT' (scale trains: the project's sane choice, not the code's 'mm').
BASE_TRAINABLE = ["classifier", "pooler", "token_type_embeddings", "rank_output"]
METHOD_KEY = {"apt": "APT", "deep_prompt": "prompt", "shallow_prompt": "prompt", "lora": "lora",
              "adapter": "adapter", "parallel_adapter": "PA", "classifier_only": None}
METER_FROZEN = ["text_transformer", "vit_model"]
# parameters that exist (checkpoint names) but that no forward uses
UNUSED_OK = ["text_transformer.pooler.dense.weight", "text_transformer.pooler.dense.bias"]

# §6.3 no-decay substrings (HF AdamW param groups of vilt_utils/meter_utils.set_schedule)
NO_DECAY = ["bias", "LayerNorm.bias", "LayerNorm.weight", "norm.bias", "norm.weight", "norm1.bias",
            "norm1.weight", "norm2.bias", "norm2.weight"]
OPTIM = {"type": "hf_adamw", "lr": 1e-3, "betas": [0.9, 0.98], "eps": 1e-8, "weight_decay": 0.01, "steps": 5}

# init scales (arbitrary, chosen so every path is active; see FORMAT.md notes)
W_STD = 0.1      # Linear / conv / embedding tables of the tiny backbones and heads
B_STD = 0.02     # biases
LN_W_NOISE = 0.1
LN_B_STD = 0.05


# ----------------------------------------------------------------------------------------------------------------
# Parameter store
# ----------------------------------------------------------------------------------------------------------------

class Store:
    """Ordered name -> float64 tensor whose values are exactly representable in float32."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)
        self.p = {}

    def _put(self, name, t):
        if name in self.p:
            raise ValueError(f"duplicate parameter {name}")
        self.p[name] = t.to(torch.float32).to(torch.float64)

    def normal(self, name, shape, std, mean=0.0):
        self._put(name, torch.randn(*shape, generator=self.g) * std + mean)

    def uniform(self, name, shape, bound):
        self._put(name, (torch.rand(*shape, generator=self.g) * 2 - 1) * bound)

    def linear(self, name, out_f, in_f, bias=True, std=W_STD):
        self.normal(name + ".weight", (out_f, in_f), std)
        if bias:
            self.normal(name + ".bias", (out_f,), B_STD)

    def ln(self, name, dim):
        self.normal(name + ".weight", (dim,), LN_W_NOISE, mean=1.0)
        self.normal(name + ".bias", (dim,), LN_B_STD)


def rounded(t):
    return t.to(torch.float32).to(torch.float64)


# ----------------------------------------------------------------------------------------------------------------
# Shared pieces
# ----------------------------------------------------------------------------------------------------------------

def lin(P, name, x):
    return F.linear(x, P[name + ".weight"], P.get(name + ".bias"))


def ln(P, name, x, eps):
    return F.layer_norm(x, (x.shape[-1],), P[name + ".weight"], P[name + ".bias"], eps)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def apt(P, pre, x, res):
    """§3.1: out = (X + (ReLU(R K^T) P) * max_M(ReLU(R K^T)).detach()) * exp(s), K = P + W_b W_a P."""
    tok = P[pre + "mm_tokens"]                                  # [M, D]
    keys = tok + F.linear(F.linear(tok, P[pre + "mm.0.weight"]), P[pre + "mm.1.weight"])  # [M, D]
    s = F.relu(res @ keys.t())                                  # [B, N, M]
    e = s @ tok                                                 # [B, N, D]
    w = s.max(dim=-1, keepdim=True)[0].detach()                 # [B, N, 1]
    return (x + e * w) * torch.exp(P[pre + "scale"])


def adapter(P, pre, z):
    """§3.5: z + Up(ReLU(Down(z)))."""
    return z + lin(P, pre + "up_sampler", F.relu(lin(P, pre + "down_sampler", z)))


def parallel_adapter(P, pre, u, mc):
    """§3.6: scale * Up(ReLU(Down(LN(u)))), no residual."""
    h = ln(P, pre + "adapter_layer_norm_before", u, mc["ln_eps"])
    return mc["scale"] * lin(P, pre + "up_proj", F.relu(lin(P, pre + "down_proj", h)))


def lora_delta(P, pre, h):
    """§3.4: h A B (A [in, r], B [r, out]), no alpha/r scaling."""
    return h @ P[pre + "lora_A"] @ P[pre + "lora_B"]


def heads_split(x, H):
    B, N, D = x.shape
    return x.reshape(B, N, H, D // H).permute(0, 2, 1, 3)       # [B, H, N, hd]


def heads_merge(x):
    B, H, N, hd = x.shape
    return x.permute(0, 2, 1, 3).reshape(B, N, H * hd)


# ----------------------------------------------------------------------------------------------------------------
# ViLT (§1)
# ----------------------------------------------------------------------------------------------------------------

def vilt_base_params(cfg, seed):
    S = Store(seed)
    D, L = cfg["hidden_size"], cfg["num_layers"]
    S.normal("text_embeddings.word_embeddings.weight", (cfg["vocab_size"], D), W_STD)
    S.normal("text_embeddings.position_embeddings.weight", (cfg["max_text_len"], D), W_STD)
    S.normal("text_embeddings.token_type_embeddings.weight", (2, D), W_STD)
    S.ln("text_embeddings.LayerNorm", D)
    S.normal("token_type_embeddings.weight", (2, D), W_STD)
    S.normal("transformer.cls_token", (1, 1, D), W_STD)
    S.normal("transformer.pos_embed", (1, 1 + cfg["pos_grid"] ** 2, D), W_STD)
    p = cfg["patch_size"]
    S.normal("transformer.patch_embed.proj.weight", (D, 3, p, p), W_STD / 2)
    S.normal("transformer.patch_embed.proj.bias", (D,), B_STD)
    for i in range(L):
        pre = f"transformer.blocks.{i}."
        S.ln(pre + "norm1", D)
        S.linear(pre + "attn.qkv", 3 * D, D)
        S.linear(pre + "attn.proj", D, D)
        S.ln(pre + "norm2", D)
        S.linear(pre + "mlp.fc1", cfg["mlp_dim"], D)
        S.linear(pre + "mlp.fc2", D, cfg["mlp_dim"])
    S.ln("transformer.norm", D)
    S.linear("pooler.dense", D, D)
    S.normal("token4classifier", (1, 1, D), W_STD * 5)
    S.linear("vqa_classifier.0", 2 * D, D)
    S.ln("vqa_classifier.1", 2 * D)
    S.linear("vqa_classifier.3", cfg["vqa_answers"], 2 * D)
    return S.p


def vilt_method_params(cfg, method, mc, seed):
    """The method's own parameters, given small non-zero values where the spec initialises them to zero."""
    S = Store(seed)
    D, L = cfg["hidden_size"], cfg["num_layers"]
    if method == "apt":
        for i in range(L):
            pre = f"transformer.blocks.{i}.attn.APT."
            S.normal(pre + "mm_tokens", (mc["M"], D), 0.3)          # spec init N(0, 0.02)
            S.normal(pre + "scale", (1,), 0.1)                      # spec init 0
            S.normal(pre + "mm.0.weight", (mc["h"], D), 1.0)        # spec init N(0, 1)
            S.normal(pre + "mm.1.weight", (D, mc["h"]), 0.05)       # spec init 0
    elif method == "deep_prompt":
        S.uniform("prompt", (L, 1, mc["num_prompts"], D), 1.0)
    elif method == "shallow_prompt":
        S.uniform("prompt", (1, 1, mc["num_prompts"], D), 1.0)
    elif method == "lora":
        for i in range(L):
            for qv in ("q_lora", "v_lora"):
                pre = f"transformer.blocks.{i}.attn.{qv}."
                S.normal(pre + "lora_A", (D, mc["r"]), 1.0)         # spec init N(0, 1)
                S.normal(pre + "lora_B", (mc["r"], D), 0.05)        # spec init 0
    elif method == "adapter":
        for i in range(L):
            for a in ("adapter0", "adapter1"):
                pre = f"transformer.blocks.{i}.{a}."
                S.linear(pre + "down_sampler", mc["r"], D, std=0.1)
                S.linear(pre + "up_sampler", D, mc["r"], std=0.1)
    elif method == "parallel_adapter":
        for i in range(L):
            pre = f"transformer.blocks.{i}.attn.PA."
            S.ln(pre + "adapter_layer_norm_before", D)
            S.linear(pre + "down_proj", mc["r"], D, std=0.1)
            S.linear(pre + "up_proj", D, mc["r"], std=0.05)
    return S.p


def vilt_text_embed(P, cfg, ids):
    L = ids.shape[1]
    w = F.embedding(ids, P["text_embeddings.word_embeddings.weight"], padding_idx=cfg["pad_token_id"])
    e = w + P["text_embeddings.token_type_embeddings.weight"][0] + P["text_embeddings.position_embeddings.weight"][:L]
    return ln(P, "text_embeddings.LayerNorm", e, cfg["text_ln_eps"])   # [B, L, D]


def vilt_visual_embed(P, cfg, img):
    """§1.3 with every pixel valid: keep all patches in raster order."""
    if not bool((img.sum(dim=1) != 0).all()):
        raise ValueError("fixture images must have no zero-sum pixel (all patches valid)")
    p = cfg["patch_size"]
    x = F.conv2d(img, P["transformer.patch_embed.proj.weight"], P["transformer.patch_embed.proj.bias"], stride=p)
    B, D, Hp, Wp = x.shape
    g = cfg["pos_grid"]
    pos = P["transformer.pos_embed"]                                     # [1, 1+g*g, D]
    spatial = pos[:, 1:, :].transpose(1, 2).reshape(1, D, g, g)
    pe = F.interpolate(spatial, size=(Hp, Wp), mode="bilinear", align_corners=True)
    pe = pe.flatten(2).transpose(1, 2)                                   # [1, Hp*Wp, D]
    x = x.flatten(2).transpose(1, 2)                                     # [B, Hp*Wp, D]
    x = torch.cat([P["transformer.cls_token"].expand(B, -1, -1), x], dim=1)
    x = x + torch.cat([pos[:, :1, :], pe], dim=1)
    mask = torch.ones(B, 1 + Hp * Wp)
    return x, mask


def vilt_attention(P, cfg, pre, h, key_mask, method, mc, n_queries):
    """Pre-LN ViT attention on h = LN1(x) [B, N(+prompts), D]; returns [B, n_queries, D]."""
    D, H = cfg["hidden_size"], cfg["num_heads"]
    qkv = lin(P, pre + "attn.qkv", h)
    q, k, v = qkv[..., :D], qkv[..., D:2 * D], qkv[..., 2 * D:]
    if method == "lora":
        q = q + lora_delta(P, pre + "attn.q_lora.", h)
        v = v + lora_delta(P, pre + "attn.v_lora.", h)
    q = q[:, :n_queries]
    q, k, v = heads_split(q, H), heads_split(k, H), heads_split(v, H)
    att = (q @ k.transpose(-2, -1)) * (D // H) ** -0.5
    att = att.masked_fill(key_mask[:, None, None, :] == 0, float("-inf"))
    ctx = heads_merge(att.softmax(dim=-1) @ v)
    out = lin(P, pre + "attn.proj", ctx)
    if method == "apt":
        out = apt(P, pre + "attn.APT.", out, h[:, :n_queries])
    if method == "parallel_adapter":
        out = out + parallel_adapter(P, pre + "attn.PA.", h[:, :n_queries], mc)
    return out


def vilt_block(P, cfg, i, x, mask, method, mc, prompt=None):
    pre = f"transformer.blocks.{i}."
    eps = cfg["ln_eps"]
    n = x.shape[1]
    if prompt is not None:                       # §3.2 deep prompt: append, queries cut to the first n rows
        B = x.shape[0]
        xa = torch.cat([x, prompt.expand(B, -1, -1)], dim=1)
        mask = torch.cat([mask, torch.ones(B, prompt.shape[1])], dim=1)
    else:
        xa = x
    a = vilt_attention(P, cfg, pre, ln(P, pre + "norm1", xa, eps), mask, method, mc, n)
    if method == "adapter":
        a = adapter(P, pre + "adapter0.", a)
    x = x + a
    m = lin(P, pre + "mlp.fc2", F.gelu(lin(P, pre + "mlp.fc1", ln(P, pre + "norm2", x, eps))))
    if method == "adapter":
        m = adapter(P, pre + "adapter1.", m)
    return x + m


def vilt_infer(P, cfg, method, mc, ids, tmask, img, type_idx):
    B = ids.shape[0]
    t = vilt_text_embed(P, cfg, ids)
    if method != "full":                         # §1.4 token4classifier replaces text position 0
        t = torch.cat([P["token4classifier"].expand(B, -1, -1), t[:, 1:]], dim=1)
    v, vmask = vilt_visual_embed(P, cfg, img)
    tt = P["token_type_embeddings.weight"]
    x = torch.cat([t + tt[0], v + tt[type_idx]], dim=1)
    mask = torch.cat([tmask, vmask], dim=1)
    if method == "shallow_prompt":               # §3.3: appended once after the embeddings
        pr = P["prompt"][0]
        x = torch.cat([x, pr.expand(B, -1, -1)], dim=1)
        mask = torch.cat([mask, torch.ones(B, pr.shape[1])], dim=1)
    for i in range(cfg["num_layers"]):
        prompt = P["prompt"][i] if method == "deep_prompt" else None
        x = vilt_block(P, cfg, i, x, mask, method, mc, prompt)
    x = ln(P, "transformer.norm", x, cfg["ln_eps"])
    return torch.tanh(lin(P, "pooler.dense", x[:, 0]))             # [B, D]


# ----------------------------------------------------------------------------------------------------------------
# METER (§2)
# ----------------------------------------------------------------------------------------------------------------

def bert_attention_params(S, pre, D):
    S.linear(pre + "self.query", D, D)
    S.linear(pre + "self.key", D, D)
    S.linear(pre + "self.value", D, D)
    S.linear(pre + "output.dense", D, D)
    S.ln(pre + "output.LayerNorm", D)


def meter_base_params(cfg, seed):
    S = Store(seed)
    D = cfg["hidden_size"]
    c, r = cfg["clip"], cfg["roberta"]
    S.linear("cross_modal_text_transform", D, r["hidden_size"])
    S.linear("cross_modal_image_transform", D, c["width"])
    S.normal("token_type_embeddings.weight", (2, D), W_STD)
    W, p = c["width"], c["patch_size"]
    vp = "vit_model.visual."
    S.normal(vp + "class_embedding", (W,), W_STD * 3)
    S.normal(vp + "positional_embedding", ((c["image_size"] // p) ** 2 + 1, W), W_STD * 3)
    S.normal(vp + "conv1.weight", (W, 3, p, p), W_STD / 2)
    S.ln(vp + "ln_pre", W)
    for i in range(c["blocks"]):
        pre = f"{vp}transformer.resblocks.{i}."
        S.normal(pre + "attn.in_proj_weight", (3 * W, W), W_STD)
        S.normal(pre + "attn.in_proj_bias", (3 * W,), B_STD)
        S.linear(pre + "attn.out_proj", W, W)
        S.ln(pre + "ln_1", W)
        S.linear(pre + "mlp.c_fc", c["mlp_dim"], W)
        S.linear(pre + "mlp.c_proj", W, c["mlp_dim"])
        S.ln(pre + "ln_2", W)
    S.ln(vp + "ln_post", W)
    R = r["hidden_size"]
    tp = "text_transformer."
    S.normal(tp + "embeddings.word_embeddings.weight", (r["vocab_size"], R), W_STD)
    S.normal(tp + "embeddings.position_embeddings.weight", (r["max_positions"], R), W_STD)
    S.normal(tp + "embeddings.token_type_embeddings.weight", (r["type_vocab_size"], R), W_STD)
    S.ln(tp + "embeddings.LayerNorm", R)
    for i in range(r["num_layers"]):
        pre = f"{tp}encoder.layer.{i}."
        bert_attention_params(S, pre + "attention.", R)
        S.linear(pre + "intermediate.dense", r["intermediate"], R)
        S.linear(pre + "output.dense", R, r["intermediate"])
        S.ln(pre + "output.LayerNorm", R)
    S.linear(tp + "pooler.dense", R, R)          # in the checkpoint, never used by METER's forward
    for stream in ("image", "text"):
        for i in range(cfg["num_top_layer"]):
            pre = f"cross_modal_{stream}_layers.{i}."
            bert_attention_params(S, pre + "attention.", D)
            bert_attention_params(S, pre + "crossattention.", D)
            S.linear(pre + "intermediate.dense", cfg["fusion_intermediate"], D)
            S.linear(pre + "output.dense", D, cfg["fusion_intermediate"])
            S.ln(pre + "output.LayerNorm", D)
    S.linear("cross_modal_image_pooler.dense", D, D)
    S.linear("cross_modal_text_pooler.dense", D, D)
    S.linear("vqa_classifier.0", 2 * D, 2 * D)
    S.ln("vqa_classifier.1", 2 * D)
    S.linear("vqa_classifier.3", cfg["vqa_answers"], 2 * D)
    S.normal("token4classifier", (1, 1, D), W_STD * 5)
    return S.p


def meter_method_params(cfg, method, mc, seed):
    S = Store(seed)
    D, L = cfg["hidden_size"], cfg["num_top_layer"]
    layers = [f"cross_modal_{s}_layers.{i}." for s in ("image", "text") for i in range(L)]
    if method == "apt":
        for pre in layers:
            for att in ("attention.", "crossattention."):
                ap = pre + att + "output.APT."
                S.normal(ap + "mm_tokens", (mc["M"], D), 0.3)
                S.normal(ap + "scale", (1,), 0.1)
                S.normal(ap + "mm.0.weight", (mc["h"], D), 1.0)
                S.normal(ap + "mm.1.weight", (D, mc["h"]), 0.05)
    elif method == "deep_prompt":
        for k in range(2):
            S.uniform(f"prompts.{k}", (L, 1, mc["num_prompts"], D), 1.0)
    elif method == "shallow_prompt":
        for k in range(2):
            S.uniform(f"prompts.{k}", (1, 1, mc["num_prompts"], D), 1.0)
    elif method == "lora":
        for pre in layers:
            for att in ("attention.", "crossattention."):
                for qv in ("q_lora", "v_lora"):
                    lp = pre + att + "self." + qv + "."
                    S.normal(lp + "lora_A", (D, mc["r"]), 1.0)
                    S.normal(lp + "lora_B", (mc["r"], D), 0.05)
    elif method == "adapter":
        for pre in layers:
            for where in ("attention.output.", "crossattention.output.", "output."):
                ap = pre + where + "adapter."
                S.linear(ap + "down_sampler", mc["r"], D, std=0.1)
                S.linear(ap + "up_sampler", D, mc["r"], std=0.1)
    elif method == "parallel_adapter":
        for pre in layers:
            for att in ("attention.", "crossattention."):
                ap = pre + att + "output.PA."
                S.ln(ap + "adapter_layer_norm_before", D)
                S.linear(ap + "down_proj", mc["r"], D, std=0.1)
                S.linear(ap + "up_proj", D, mc["r"], std=0.05)
    return S.p


def ext_mask(mask, value):
    """[B, N] 1/0 -> additive [B, 1, 1, N]: 0 keep, value pad (HF get_extended_attention_mask)."""
    return (1.0 - mask)[:, None, None, :] * value


def bert_attention(P, pre, h, mask_add, H, eps, method=None, mc=None, enc=None):
    """HF BertAttention (self when enc is None, else cross) with the METER PETL hooks of §3."""
    src = h if enc is None else enc
    q = lin(P, pre + "self.query", h)
    k = lin(P, pre + "self.key", src)
    v = lin(P, pre + "self.value", src)
    if method == "lora":
        q = q + lora_delta(P, pre + "self.q_lora.", h)
        v = v + lora_delta(P, pre + "self.v_lora.", src)
    hd = q.shape[-1] // H
    q, k, v = heads_split(q, H), heads_split(k, H), heads_split(v, H)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd) + mask_add
    ctx = heads_merge(scores.softmax(dim=-1) @ v)
    out = lin(P, pre + "output.dense", ctx)
    if method == "apt":
        out = apt(P, pre + "output.APT.", out, h)
    if method == "adapter":
        out = adapter(P, pre + "output.adapter.", out)
    y = ln(P, pre + "output.LayerNorm", out + h, eps)
    if method == "parallel_adapter":
        y = y + parallel_adapter(P, pre + "output.PA.", h, mc)
    return y


def cross_layer(P, cfg, pre, x, o, x_add, o_add, method, mc):
    """§2.3 BertCrossLayer: self-attn, cross-attn (keys/values from o), FFN; post-LN eps 1e-12."""
    H, eps = cfg["num_heads"], cfg["fusion_ln_eps"]
    a1 = bert_attention(P, pre + "attention.", x, x_add, H, eps, method, mc)
    a2 = bert_attention(P, pre + "crossattention.", a1, o_add, H, eps, method, mc, enc=o)
    out = lin(P, pre + "output.dense", F.gelu(lin(P, pre + "intermediate.dense", a2)))
    if method == "adapter":
        out = adapter(P, pre + "output.adapter.", out)
    return ln(P, pre + "output.LayerNorm", out + a2, eps)


def roberta(P, cfg, ids, tmask):
    r = cfg["roberta"]
    pad = r["pad_token_id"]
    tp = "text_transformer."
    not_pad = (ids != pad).long()
    positions = torch.cumsum(not_pad, dim=1) * not_pad + pad      # HF create_position_ids_from_input_ids
    e = (F.embedding(ids, P[tp + "embeddings.word_embeddings.weight"], padding_idx=pad)
         + P[tp + "embeddings.token_type_embeddings.weight"][0]
         + F.embedding(positions, P[tp + "embeddings.position_embeddings.weight"], padding_idx=pad))
    x = ln(P, tp + "embeddings.LayerNorm", e, r["ln_eps"])
    add = ext_mask(tmask, r["mask_value"])
    for i in range(r["num_layers"]):
        pre = f"{tp}encoder.layer.{i}."
        a = bert_attention(P, pre + "attention.", x, add, r["num_heads"], r["ln_eps"])
        out = lin(P, pre + "output.dense", F.gelu(lin(P, pre + "intermediate.dense", a)))
        x = ln(P, pre + "output.LayerNorm", out + a, r["ln_eps"])
    return x                                                        # [B, L, R]


def clip_visual(P, cfg, img):
    c = cfg["clip"]
    vp = "vit_model.visual."
    W, H, eps = c["width"], c["heads"], c["ln_eps"]
    x = F.conv2d(img, P[vp + "conv1.weight"], None, stride=c["patch_size"])
    B = x.shape[0]
    x = x.reshape(B, W, -1).permute(0, 2, 1)                        # [B, g*g, W]
    x = torch.cat([P[vp + "class_embedding"].expand(B, 1, W), x], dim=1) + P[vp + "positional_embedding"]
    x = ln(P, vp + "ln_pre", x, eps)
    for i in range(c["blocks"]):
        pre = f"{vp}transformer.resblocks.{i}."
        h = ln(P, pre + "ln_1", x, eps)
        qkv = F.linear(h, P[pre + "attn.in_proj_weight"], P[pre + "attn.in_proj_bias"])
        q, k, v = (heads_split(t, H) for t in qkv.split(W, dim=-1))
        att = ((q * (W // H) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        x = x + lin(P, pre + "attn.out_proj", heads_merge(att @ v))
        x = x + lin(P, pre + "mlp.c_proj", quick_gelu(lin(P, pre + "mlp.c_fc", ln(P, pre + "ln_2", x, eps))))
    return ln(P, vp + "ln_post", x, eps)                            # [B, 1+g*g, W]


def meter_infer(P, cfg, method, mc, ids, tmask, img, type_idx):
    B = ids.shape[0]
    mval = cfg["fusion_mask_value"]
    t = lin(P, "cross_modal_text_transform", roberta(P, cfg, ids, tmask))
    v = lin(P, "cross_modal_image_transform", clip_visual(P, cfg, img))
    vmask = torch.ones(B, v.shape[1])
    if method != "full":                          # §2.2 step 3: after cross_modal_text_transform
        t = torch.cat([P["token4classifier"].expand(B, -1, -1), t[:, 1:]], dim=1)
    tt = P["token_type_embeddings.weight"]
    x, y = t + tt[0], v + tt[type_idx]
    t_add, v_add = ext_mask(tmask, mval), ext_mask(vmask, mval)
    L = cfg["num_top_layer"]
    if method == "shallow_prompt":                # §3.3: prepended once, carried through every layer
        p0, p1 = P["prompts.0"][0, 0], P["prompts.1"][0, 0]
        x = torch.cat([p0.expand(B, -1, -1), x], dim=1)
        y = torch.cat([p1.expand(B, -1, -1), y], dim=1)
        ones = torch.ones(B, p0.shape[0])
        t_add = ext_mask(torch.cat([ones, tmask], dim=1), mval)
        v_add = ext_mask(torch.cat([ones, vmask], dim=1), mval)
    for i in range(L):
        tl, il = f"cross_modal_text_layers.{i}.", f"cross_modal_image_layers.{i}."
        if method == "deep_prompt":               # §3.2: prompts only as extra cross-attention keys/values
            p0, p1 = P["prompts.0"][i, 0], P["prompts.1"][i, 0]
            ones = torch.ones(B, p0.shape[0])
            x_t = torch.cat([p0.expand(B, -1, -1), x], dim=1)
            y_t = torch.cat([p1.expand(B, -1, -1), y], dim=1)
            x1 = cross_layer(P, cfg, tl, x, y_t, t_add, ext_mask(torch.cat([ones, vmask], 1), mval), method, mc)
            y1 = cross_layer(P, cfg, il, y, x_t, v_add, ext_mask(torch.cat([ones, tmask], 1), mval), method, mc)
        else:
            x1 = cross_layer(P, cfg, tl, x, y, t_add, v_add, method, mc)
            y1 = cross_layer(P, cfg, il, y, x, v_add, t_add, method, mc)
        x, y = x1, y1
    ct = torch.tanh(lin(P, "cross_modal_text_pooler.dense", x[:, 0]))
    ci = torch.tanh(lin(P, "cross_modal_image_pooler.dense", y[:, 0]))
    return torch.cat([ct, ci], dim=-1)                               # [B, 2D]


# ----------------------------------------------------------------------------------------------------------------
# Heads, losses (§4) and the case runner
# ----------------------------------------------------------------------------------------------------------------

def head(P, name, cls, eps):
    h = F.gelu(ln(P, name + ".1", lin(P, name + ".0", cls), eps))
    return lin(P, name + ".3", h)


def forward_case(P, model, cfg, method, mc, task, inp):
    infer = vilt_infer if model == "vilt" else meter_infer
    if task == "vqa":
        cls = infer(P, cfg, method, mc, inp["text_ids"], inp["text_mask"], inp["pixels"], 1)
        logits = head(P, "vqa_classifier", cls, cfg["head_ln_eps"])
        tgt = inp["vqa_targets"]
        loss = F.binary_cross_entropy_with_logits(logits, tgt) * tgt.shape[1]
    else:
        c0 = infer(P, cfg, method, mc, inp["text_ids"], inp["text_mask"], inp["pixels"], 1)
        c1 = infer(P, cfg, method, mc, inp["text_ids"], inp["text_mask"], inp["pixels_1"], 2)
        cls = torch.cat([c0, c1], dim=-1)
        logits = head(P, "nlvr2_classifier", cls, cfg["head_ln_eps"])
        loss = F.cross_entropy(logits, inp["labels"])
    return cls, logits, loss


def trainable_names(model, method, names):
    if method == "full":
        return list(names)
    keys = BASE_TRAINABLE + ([METHOD_KEY[method]] if METHOD_KEY[method] else [])
    out = [n for n in names if any(k in n for k in keys)]
    if model == "meter":
        out = [n for n in out if not any(k in n for k in METER_FROZEN)]
    return out


def hf_adamw_step(params, grads, state, t, names, decay):
    lr, (b1, b2), eps, wd = OPTIM["lr"], OPTIM["betas"], OPTIM["eps"], OPTIM["weight_decay"]
    with torch.no_grad():
        for n in names:
            p, g = params[n], grads[n]
            m, v = state.setdefault(n, (torch.zeros_like(p), torch.zeros_like(p)))
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            step = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            p.addcdiv_(m, v.sqrt().add_(eps), value=-step)
            if decay[n]:
                p.add_(p, alpha=-lr * wd)


def run_case(model, cfg, method, task, base, mparams, inp):
    mc = METHOD_CONFIG[method]
    P = {}
    for n, t in base.items():
        if method == "full" and n == "token4classifier":
            continue
        if task == "nlvr2" and n.startswith("vqa_classifier."):
            continue
        P[n] = t.clone()
    for n, t in mparams.items():
        P[n] = t.clone()
    names = list(P)
    train = trainable_names(model, method, names)
    decay = {n: not any(k in n for k in NO_DECAY) for n in train}
    for n in train:
        P[n].requires_grad_(True)
    step0 = {n: t.detach().clone() for n, t in P.items()}
    state, losses, first = {}, [], None
    for k in range(OPTIM["steps"]):
        for n in train:
            P[n].grad = None
        cls, logits, loss = forward_case(P, model, cfg, method, mc, task, inp)
        loss.backward()
        if k == 0:
            # requires_grad but never reached by the loss: HF AdamW skips them (no update, no decay)
            unused = [n for n in train if P[n].grad is None]
            if [n for n in unused if n not in UNUSED_OK]:
                raise RuntimeError(f"{model}/{method}/{task}: trainable params without gradient: {unused}")
            train = [n for n in train if n not in unused]
        grads = {n: P[n].grad.detach().clone() for n in train}
        if first is None:
            first = (cls.detach(), logits.detach(), loss.detach(), grads)
        losses.append(loss.item())
        hf_adamw_step(P, grads, state, k + 1, train, decay)
    return names, train, unused, decay, step0, first, losses


# ----------------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------------

def make_inputs(model, cfg, seed):
    g = torch.Generator().manual_seed(seed)
    B, L = cfg["batch"], cfg["text_len"]
    vocab = cfg["vocab_size"] if model == "vilt" else cfg["roberta"]["vocab_size"]
    ids = torch.randint(3, vocab, (B, L), generator=g)
    mask = torch.ones(B, L)
    valid1 = L - 3
    if model == "vilt":
        pad = cfg["pad_token_id"]
        ids[:, 0] = 2                               # a [CLS]-like id (replaced by token4classifier except in full)
    else:
        pad = cfg["roberta"]["pad_token_id"]
        ids[:, 0] = 0                               # <s>
        ids[0, L - 1] = 2                           # </s>
        ids[1, valid1 - 1] = 2
    ids[1, valid1:] = pad
    mask[1, valid1:] = 0
    if model == "vilt":
        H, W = cfg["image_height"], cfg["image_width"]
    else:
        H = W = cfg["clip"]["image_size"]

    def image():
        img = rounded(torch.randn(B, 3, H, W, generator=g))
        s = img.sum(dim=1)
        img[:, 0][s.abs() < 1e-3] += 0.5            # no zero-sum pixel
        return rounded(img)

    A = cfg["vqa_answers"]
    tgt = torch.zeros(B, A)
    tgt[0, 1], tgt[0, 4] = 1.0, 0.3
    tgt[1, 2], tgt[1, 5], tgt[1, 6] = 0.9, 0.6, 0.3
    return {"text_ids": ids, "text_mask": mask, "pixels": image(), "pixels_1": image(),
            "vqa_targets": tgt, "labels": torch.tensor([1, 0])}


# ----------------------------------------------------------------------------------------------------------------
# safetensors (written by hand: u64 LE header size, JSON header, packed data)
# ----------------------------------------------------------------------------------------------------------------

def to_entry(t, dtype):
    t = t.detach()
    if dtype == "F32":
        arr = t.to(torch.float32).contiguous().numpy().astype("<f4")
    elif dtype == "I32":
        arr = t.to(torch.int32).contiguous().numpy().astype("<i4")
    else:
        raise ValueError(dtype)
    return dtype, list(t.shape), arr.tobytes()


def write_safetensors(path, entries, metadata):
    header = {"__metadata__": metadata}
    offset, blobs = 0, []
    for name, (dtype, shape, data) in entries.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        a, b = h["data_offsets"]
        dt = {"F32": "<f4", "I32": "<i4"}[h["dtype"]]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=dt).reshape(h["shape"])
    return out, meta


# ----------------------------------------------------------------------------------------------------------------
# Self-checks of the implementation (independent of the fixtures)
# ----------------------------------------------------------------------------------------------------------------

def self_checks(meter_base):
    # CLIP attention vs torch.nn.MultiheadAttention (the module the reference uses)
    c = METER_TINY["clip"]
    W, H = c["width"], c["heads"]
    pre = "vit_model.visual.transformer.resblocks.0."
    mha = torch.nn.MultiheadAttention(W, H)
    with torch.no_grad():
        mha.in_proj_weight.copy_(meter_base[pre + "attn.in_proj_weight"])
        mha.in_proj_bias.copy_(meter_base[pre + "attn.in_proj_bias"])
        mha.out_proj.weight.copy_(meter_base[pre + "attn.out_proj.weight"])
        mha.out_proj.bias.copy_(meter_base[pre + "attn.out_proj.bias"])
        h = torch.randn(2, 5, W, generator=torch.Generator().manual_seed(5))
        ref = mha(h.transpose(0, 1), h.transpose(0, 1), h.transpose(0, 1), need_weights=False)[0].transpose(0, 1)
        qkv = F.linear(h, meter_base[pre + "attn.in_proj_weight"], meter_base[pre + "attn.in_proj_bias"])
        q, k, v = (heads_split(t, H) for t in qkv.split(W, dim=-1))
        att = ((q * (W // H) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        mine = lin(meter_base, pre + "attn.out_proj", heads_merge(att @ v))
        err = (mine - ref).abs().max().item()
        if err > 1e-12:
            raise AssertionError(f"CLIP attention mismatch vs nn.MultiheadAttention: {err}")
    # bilinear align_corners=True 3x3 -> 2x3: corners of the output equal corners of the input
    m = torch.arange(9.0).reshape(1, 1, 3, 3)
    r = F.interpolate(m, size=(2, 3), mode="bilinear", align_corners=True)
    want = torch.tensor([[0.0, 1.0, 2.0], [6.0, 7.0, 8.0]])
    if not torch.equal(r[0, 0], want):
        raise AssertionError(f"bilinear align_corners check failed: {r}")


def check_identity_at_spec_init():
    """LoRA with B = 0, and APT with P = 0 and s = 0, must leave the output of classifier_only unchanged:
    a guard that the hooks add to (and only to) the branch the spec names."""
    cfg = VILT_TINY
    base = vilt_base_params(cfg, 11)
    inp = make_inputs("vilt", cfg, 12)
    ref = forward_case(base, "vilt", cfg, "classifier_only", {}, "vqa", inp)[1]
    mp = vilt_method_params(cfg, "lora", METHOD_CONFIG["lora"], 13)
    for n in mp:
        if n.endswith("lora_B"):
            mp[n] = torch.zeros_like(mp[n])
    out = forward_case({**base, **mp}, "vilt", cfg, "lora", METHOD_CONFIG["lora"], "vqa", inp)[1]
    if (out - ref).abs().max().item() > 1e-12:
        raise AssertionError("LoRA with B = 0 changed the output")
    mp2 = vilt_method_params(cfg, "apt", METHOD_CONFIG["apt"], 13)
    for n in mp2:
        if n.endswith("mm_tokens") or n.endswith("scale"):
            mp2[n] = torch.zeros_like(mp2[n])       # P = 0 -> E = 0 -> APT is the identity when s = 0
    out = forward_case({**base, **mp2}, "vilt", cfg, "apt", METHOD_CONFIG["apt"], "vqa", inp)[1]
    if (out - ref).abs().max().item() > 1e-12:
        raise AssertionError("APT with P = 0 and s = 0 changed the output")


def load_case(model, method, task):
    """Params (base merged with the case file), inputs and metadata of one written case."""
    base, _ = read_safetensors(os.path.join(OUT_DIR, f"{model}_base.safetensors"))
    t, meta = read_safetensors(os.path.join(OUT_DIR, f"{model}_{method}_{task}.safetensors"))
    P = {}
    for n in json.loads(meta["params"]):
        a = t.get("param." + n)
        P[n] = torch.tensor(np.array(base["param." + n] if a is None else a), dtype=torch.float32)
    inp = {k[6:]: torch.tensor(np.array(v)) for k, v in t.items() if k.startswith("input.")}
    inp = {k: (v.long() if v.dtype == torch.int32 else v) for k, v in inp.items()}
    return P, inp, t, meta


def verify_float32(model, method, task, tol=1e-4):
    """Re-run a written case from the files alone in float32 torch: outputs and gradients must match the float64
    reference within tol * max|ref| per tensor, and so must the 5 AdamW losses. Proves the files are
    self-consistent and that a float32 port can meet the tolerance. Returns the worst relative error."""
    torch.set_default_dtype(torch.float32)        # masks/ones created inside the forward follow the default
    try:
        return _verify_float32(model, method, task, tol)
    finally:
        torch.set_default_dtype(torch.float64)


def _verify_float32(model, method, task, tol):
    P, inp, t, meta = load_case(model, method, task)
    cfg, mc = json.loads(meta["config"]), json.loads(meta["method_config"])
    train = json.loads(meta["trainable"])
    decayed = set(json.loads(meta["optimizer"])["decayed"])
    decay = {n: n in decayed for n in train}
    for n in train:
        P[n].requires_grad_(True)
    worst = 0.0

    def check(what, got, ref):
        nonlocal worst
        ref = np.asarray(ref, dtype=np.float64)
        scale = np.abs(ref).max()
        if scale < 1e-12:                          # mathematically zero (attention key biases)
            return
        err = float(np.abs(got.detach().to(torch.float64).numpy() - ref).max() / scale)
        worst = max(worst, err)
        if err > tol:
            raise AssertionError(f"{model}/{method}/{task}: float32 {what} off by {err:.2e} (relative to max)")

    state, losses = {}, []
    for k in range(OPTIM["steps"]):
        for n in train:
            P[n].grad = None
        cls, logits, loss = forward_case(P, model, cfg, method, mc, task, inp)
        loss.backward()
        if k == 0:
            check("cls_feats", cls, t["output.cls_feats"])
            check("logits", logits, t["output.logits"])
            for n in train:
                check("grad." + n, P[n].grad, t["grad." + n])
        losses.append(loss.item())
        hf_adamw_step(P, {n: P[n].grad for n in train}, state, k + 1, train, decay)
    check("losses", torch.tensor(losses, dtype=torch.float64), t["losses"])
    return worst


# ----------------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------------

def f32(t):
    return to_entry(t, "F32")


def write_base(model, cfg, base):
    path = os.path.join(OUT_DIR, f"{model}_base.safetensors")
    entries = {f"param.{n}": f32(t) for n, t in base.items()}
    meta = {"model": model, "config": json.dumps(cfg), "format": FORMAT, "kind": "base"}
    write_safetensors(path, entries, meta)
    return path


def write_case(model, cfg, method, task, base, inp, result):
    names, train, unused, decay, step0, (cls, logits, loss, grads), losses = result
    entries = {}
    for n in names:
        t = step0[n]
        b = base.get(n)
        if b is None or b.shape != t.shape or not torch.equal(b, t):
            entries[f"param.{n}"] = f32(t)
    entries["input.text_ids"] = to_entry(inp["text_ids"], "I32")
    entries["input.text_mask"] = f32(inp["text_mask"])
    entries["input.pixels"] = f32(inp["pixels"])
    if task == "vqa":
        entries["input.vqa_targets"] = f32(inp["vqa_targets"])
    else:
        entries["input.pixels_1"] = f32(inp["pixels_1"])
        entries["input.labels"] = to_entry(inp["labels"], "I32")
    entries["output.cls_feats"] = f32(cls)
    entries["output.logits"] = f32(logits)
    entries["output.loss"] = f32(loss.reshape(1))
    for n in train:
        entries[f"grad.{n}"] = f32(grads[n])
    entries["losses"] = f32(torch.tensor(losses))
    optim = dict(OPTIM, no_decay=NO_DECAY, decayed=[n for n in train if decay[n]],
                 not_decayed=[n for n in train if not decay[n]])
    meta = {"model": model, "method": method, "task": task, "format": FORMAT, "kind": "case",
            "config": json.dumps(cfg), "method_config": json.dumps(METHOD_CONFIG[method]),
            "params": json.dumps(names), "trainable": json.dumps(train), "unused": json.dumps(unused),
            "optimizer": json.dumps(optim)}
    path = os.path.join(OUT_DIR, f"{model}_{method}_{task}.safetensors")
    write_safetensors(path, entries, meta)
    # read back and verify
    back, bmeta = read_safetensors(path)
    assert json.loads(bmeta["trainable"]) == train
    assert np.array_equal(back["output.logits"], logits.to(torch.float32).numpy())
    for n in train:
        assert back[f"grad.{n}"].shape == tuple(grads[n].shape)
    return path


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    models = {
        "vilt": (VILT_TINY, vilt_base_params, vilt_method_params),
        "meter": (METER_TINY, meter_base_params, meter_method_params),
    }
    seeds = {"vilt": 100, "meter": 200}
    check_identity_at_spec_init()
    total = 0
    rows = []
    for model, (cfg, base_fn, method_fn) in models.items():
        s0 = seeds[model]
        base = base_fn(cfg, s0)
        if model == "meter":
            self_checks(base)
        inp = make_inputs(model, cfg, s0 + 1)
        total += os.path.getsize(write_base(model, cfg, base))
        cases = [(m, "vqa") for m in METHODS] + [("classifier_only", "nlvr2")]
        for j, (method, task) in enumerate(cases):
            mparams = method_fn(cfg, method, METHOD_CONFIG[method], s0 + 10 + j)
            if task == "nlvr2":
                D = cfg["hidden_size"]
                S = Store(s0 + 50)
                S.linear("nlvr2_classifier.0", 2 * D, 4 * D if model == "meter" else 2 * D)
                S.ln("nlvr2_classifier.1", 2 * D)
                S.linear("nlvr2_classifier.3", 2, 2 * D)
                tt = base["token_type_embeddings.weight"]
                mparams = dict(mparams, **S.p)
                mparams["token_type_embeddings.weight"] = torch.cat([tt, tt[1:2]], dim=0)   # row 2 = row 1
            result = run_case(model, cfg, method, task, base, mparams, inp)
            path = write_case(model, cfg, method, task, base, inp, result)
            size = os.path.getsize(path)
            total += size
            losses = result[6]
            rows.append(f"{model:5s} {method:16s} {task:5s} trainable={len(result[1]):3d} "
                        f"loss {losses[0]:.6f} -> {losses[-1]:.6f}  {size/1024:7.1f} KiB")
            if not losses[-1] < losses[0]:
                raise AssertionError(f"{model}/{method}/{task}: 5 AdamW steps did not lower the loss: {losses}")
            worst = verify_float32(model, method, task)
            rows[-1] += f"  f32 worst {worst:.1e}"
    print("\n".join(rows))
    print(f"total {total/1024/1024:.2f} MiB in {OUT_DIR}")


if __name__ == "__main__":
    sys.exit(main())
