#!/usr/bin/python3
# Writes the .ckpt importer fixture with torch.save: a tiny ViLT-named state dict (hidden 16, 2 blocks,
# vocabulary 30, 8 text positions, 2x2 patch grid of 4 px patches) wrapped like a PyTorch Lightning checkpoint
# ({'epoch', 'global_step', 'pytorch-lightning_version', 'state_dict', 'optimizer_states', 'hyper_parameters'}).
# It also stores, on purpose: an int64 buffer (position_ids), one float16 tensor, one non-contiguous
# (transposed) tensor and one nn.Parameter, so the reader's dtype, stride and _rebuild_parameter paths are used.
# Expected values go to a JSON file beside it, so the TS tests need no torch.
# Run with Debian's torch:  /usr/bin/python3 scripts/make_ckpt_fixture.py
import json
import os
import sys
import types
import zipfile
from collections import OrderedDict

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'ckpt')
D, L, V, T, G, P = 16, 2, 30, 8, 2, 4

def fake_module(name, **attrs):
    # stand-ins for classes the real checkpoints reference (pytorch_lightning / sacred are not installed here);
    # pickle records them by module + name, exactly as the originals appear in the files
    parts = name.split('.')
    for i in range(1, len(parts)):
        sys.modules.setdefault('.'.join(parts[:i]), types.ModuleType('.'.join(parts[:i])))
    mod = types.ModuleType(name)
    for k, v in attrs.items():
        v.__module__ = name
        setattr(mod, k, v)
    sys.modules[name] = mod
    return mod


class ModelCheckpoint:
    pass


class ReadOnlyDict(dict):
    pass


def main():
    torch.manual_seed(0)
    sd = OrderedDict()
    r = lambda *s: torch.randn(*s)
    sd['text_embeddings.position_ids'] = torch.arange(T, dtype=torch.int64).unsqueeze(0)
    sd['text_embeddings.word_embeddings.weight'] = r(V, D)
    sd['text_embeddings.position_embeddings.weight'] = r(T, D)
    sd['text_embeddings.token_type_embeddings.weight'] = r(2, D)
    sd['text_embeddings.LayerNorm.weight'] = 1 + 0.1 * r(D)
    sd['text_embeddings.LayerNorm.bias'] = 0.1 * r(D)
    sd['token_type_embeddings.weight'] = r(2, D)
    sd['transformer.cls_token'] = r(1, 1, D)
    sd['transformer.pos_embed'] = r(1, G * G + 1, D)
    sd['transformer.patch_embed.proj.weight'] = r(D, 3, P, P)
    sd['transformer.patch_embed.proj.bias'] = r(D)
    for i in range(L):
        b = f'transformer.blocks.{i}.'
        sd[b + 'norm1.weight'] = 1 + 0.1 * r(D)
        sd[b + 'norm1.bias'] = 0.1 * r(D)
        sd[b + 'attn.qkv.weight'] = r(3 * D, D)
        sd[b + 'attn.qkv.bias'] = r(3 * D)
        sd[b + 'attn.proj.weight'] = r(D, D)
        sd[b + 'attn.proj.bias'] = r(D)
        sd[b + 'norm2.weight'] = 1 + 0.1 * r(D)
        sd[b + 'norm2.bias'] = 0.1 * r(D)
        sd[b + 'mlp.fc1.weight'] = r(4 * D, D)
        sd[b + 'mlp.fc1.bias'] = r(4 * D)
        sd[b + 'mlp.fc2.weight'] = r(D, 4 * D)
        sd[b + 'mlp.fc2.bias'] = r(D)
    sd['transformer.norm.weight'] = 1 + 0.1 * r(D)
    sd['transformer.norm.bias'] = 0.1 * r(D)
    # a transposed view: the storage is [D_in, D_out] row-major, the tensor reads it with strides (1, D)
    sd['pooler.dense.weight'] = r(D, D).t()
    sd['pooler.dense.bias'] = torch.nn.Parameter(r(D))
    sd['itm_score.fc.weight'] = r(2, D)
    sd['itm_score.fc.bias'] = r(2).half()
    sd['mlm_score.bias'] = r(V)

    ckpt = {
        'epoch': 3,
        'global_step': 200000,
        'pytorch-lightning_version': '1.1.4',
        'state_dict': sd,
        'optimizer_states': [{'state': {0: {'step': 7, 'exp_avg': r(3)}}, 'param_groups': [{'lr': 1e-4, 'betas': (0.9, 0.98), 'params': [0]}]}],
        'hyper_parameters': {'config': {'hidden_size': D, 'num_layers': L, 'vocab_size': V, 'max_text_len': T}},
    }
    # what Lightning 1.1 and sacred put beside the weights: a callback CLASS as a dict key, a dict subclass, a
    # numpy scalar (reduced through numpy.core.multiarray.scalar and _codecs.encode)
    fake_module('pytorch_lightning.callbacks.model_checkpoint', ModelCheckpoint=ModelCheckpoint)
    fake_module('sacred.config.custom_containers', ReadOnlyDict=ReadOnlyDict)
    import numpy as np
    ckpt['callbacks'] = {ModelCheckpoint: {'best_model_score': np.float64(0.5), 'monitor': None}}
    ckpt['hyper_parameters']['config'] = ReadOnlyDict(ckpt['hyper_parameters']['config'])
    os.makedirs(OUT, exist_ok=True)
    tmp = os.path.join(OUT, 'vilt_tiny.ckpt.tmp')
    torch.save(ckpt, tmp)
    os.replace(tmp, os.path.join(OUT, 'vilt_tiny.ckpt'))
    expected = OrderedDict()
    for k, v in sd.items():
        v = v.detach()
        is_int = not v.is_floating_point()
        expected[k] = {
            'shape': list(v.shape),
            'dtype': 'int32' if is_int else 'float32',
            'data': [int(x) for x in v.reshape(-1).tolist()] if is_int else [float(x) for x in v.float().reshape(-1).tolist()],
        }
    # spec 2.1: the position table resized on load (CLS row kept, grid bicubic, align_corners False), 2x2 -> 3x3
    pe = sd['transformer.pos_embed'][0]
    grid = pe[1:].reshape(G, G, D).permute(2, 0, 1).unsqueeze(0)
    up = torch.nn.functional.interpolate(grid, size=(3, 3), mode='bicubic', align_corners=False)
    resized = torch.cat([pe[:1], up[0].permute(1, 2, 0).reshape(9, D)], 0).unsqueeze(0)
    with open(os.path.join(OUT, 'vilt_tiny.expected.json.tmp'), 'w') as f:
        json.dump({'torch_version': torch.__version__, 'tensors': expected,
                   'pos_embed_resized_3x3': {'shape': list(resized.shape), 'data': [float(x) for x in resized.reshape(-1).tolist()]}}, f)
    os.replace(os.path.join(OUT, 'vilt_tiny.expected.json.tmp'), os.path.join(OUT, 'vilt_tiny.expected.json'))
    # the same archive re-packed with deflated entries (torch writes stored ones; zip tools may not)
    src = os.path.join(OUT, 'vilt_tiny.ckpt')
    tmp = os.path.join(OUT, 'vilt_tiny_deflated.ckpt.tmp')
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, 'w', compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    os.replace(tmp, os.path.join(OUT, 'vilt_tiny_deflated.ckpt'))
    print('wrote', os.path.join(OUT, 'vilt_tiny.ckpt'), 'with', len(sd), 'tensors, torch', torch.__version__)

if __name__ == '__main__':
    main()
