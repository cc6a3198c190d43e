#!/usr/bin/python3
# Writes the .ckpt importer fixture with torch.save: a tiny ViLT-named state dict (hidden 16, 2 blocks,
# vocabulary 30, 8 text positions, 2x2 patch grid of 4 px patches) wrapped like a PyTorch Lightning checkpoint
# ({'epoch', 'global_step', 'pytorch-lightning_version', 'state_dict', 'optimizer_states', 'hyper_parameters'}).
# It also stores, on purpose: an int64 buffer (position_ids), one float16 tensor, one non-contiguous
# (transposed) tensor and one nn.Parameter, so the reader's dtype, stride and _rebuild_parameter paths are used.
# Expected values go to a JSON file beside it, so the TS tests need no torch.
# Second fixture, meter_tiny.ckpt: a METER-named state dict (reference names of models/NAMES.md: vit_model.visual.*,
# text_transformer.*, cross_modal_*) for a narrowed METER_TINY (same layer counts and 8 px patches; fusion and RoBERTa
# hidden 16 (equal, as token4classifier requires), CLIP width 12 so the image transform is not square), with the CLIP
# position table for a 3x3 grid + CLS (trained at 24 px) while the model is built for 2x2 (16 px), the pre-trained
# ITM head, and MLM head
# tensors the model does not have (mlm_score.decoder.weight tied to the word embeddings: one storage, two names; one
# tensor a view at a storage offset). Its JSON holds per-tensor torch checksums (float64 sum and weighted sum), the
# values of small tensors, and torch's bicubic resize of the position table to 2x2 and 4x4.
# Run with Debian's torch:  /usr/bin/python3 scripts/make_ckpt_fixture.py [vilt] [meter] [--out DIR]
# (no selection: both). Re-running `vilt` rewrites vilt_tiny_deflated.ckpt with new zip timestamps (zipfile), the
# other files byte for byte.
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


def write_vilt(OUT):
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

def host_expect(v):
    # torch-side checks of one tensor, independent of the TS reader: float64 sum and index-weighted sum over the
    # row-major values, and all values when the tensor is small
    v = v.detach()
    is_int = not v.is_floating_point()
    flat = v.reshape(-1).double()
    w = (torch.arange(flat.numel(), dtype=torch.float64) % 13) - 6
    e = {'shape': list(v.shape), 'dtype': 'int32' if is_int else 'float32',
         'sum': float(flat.sum()), 'wsum': float((flat * w).sum()), 'abs_sum': float(flat.abs().sum())}
    if flat.numel() <= 64:
        e['data'] = [int(x) for x in flat.tolist()] if is_int else [float(x) for x in v.float().reshape(-1).tolist()]
    return e


# the narrowed METER_TINY of meter_tiny.ckpt (the TS test builds the same MeterConfig)
MD, MHEADS, MFUSE, MINTER, MTEXT = 16, 2, 2, 32, 16                  # fusion hidden, heads, layers/stream, FFN, max_text_len
CW, CHEADS, CLAYERS, CPATCH, CGRID = 12, 2, 3, 8, 3                   # CLIP width, heads, layers (layers-1 built), patch, ckpt grid
RH, RHEADS, RLAYERS, RINTER, RVOCAB, RPOS = 16, 2, 2, 24, 64, 18      # RoBERTa hidden, heads, layers, FFN, vocab, positions


def write_meter(OUT):
    torch.manual_seed(1)
    r = lambda *s: torch.randn(*s)
    ln = lambda n: (1 + 0.1 * r(n), 0.1 * r(n))
    sd = OrderedDict()

    def linear(name, i, o):
        sd[name + '.weight'] = r(o, i) * i ** -0.5
        sd[name + '.bias'] = 0.1 * r(o)

    def layernorm(name, n):
        sd[name + '.weight'], sd[name + '.bias'] = ln(n)

    def bert_attention(name, h):
        for q in ('query', 'key', 'value'):
            linear(f'{name}.self.{q}', h, h)
        linear(f'{name}.output.dense', h, h)
        layernorm(f'{name}.output.LayerNorm', h)

    def bert_ffn(name, h, inter):
        linear(f'{name}.intermediate.dense', h, inter)
        linear(f'{name}.output.dense', inter, h)
        layernorm(f'{name}.output.LayerNorm', h)

    # module order of METER's METERTransformerSS
    linear('cross_modal_text_transform', RH, MD)
    linear('cross_modal_image_transform', CW, MD)
    sd['token_type_embeddings.weight'] = r(2, MD)
    v = 'vit_model.visual.'
    sd[v + 'class_embedding'] = r(CW) * CW ** -0.5
    sd[v + 'positional_embedding'] = r(CGRID * CGRID + 1, CW) * CW ** -0.5
    sd[v + 'conv1.weight'] = r(CW, 3, CPATCH, CPATCH) * 0.1
    layernorm(v + 'ln_pre', CW)
    for i in range(CLAYERS - 1):
        b = f'{v}transformer.resblocks.{i}.'
        sd[b + 'attn.in_proj_weight'] = r(3 * CW, CW) * CW ** -0.5
        sd[b + 'attn.in_proj_bias'] = 0.1 * r(3 * CW)
        linear(b + 'attn.out_proj', CW, CW)
        layernorm(b + 'ln_1', CW)
        linear(b + 'mlp.c_fc', CW, 4 * CW)
        linear(b + 'mlp.c_proj', 4 * CW, CW)
        layernorm(b + 'ln_2', CW)
    layernorm(v + 'ln_post', CW)
    t = 'text_transformer.'
    sd[t + 'embeddings.position_ids'] = torch.arange(RPOS, dtype=torch.int64).unsqueeze(0)
    sd[t + 'embeddings.word_embeddings.weight'] = r(RVOCAB, RH)
    sd[t + 'embeddings.position_embeddings.weight'] = r(RPOS, RH)
    sd[t + 'embeddings.token_type_embeddings.weight'] = r(1, RH)
    layernorm(t + 'embeddings.LayerNorm', RH)
    for i in range(RLAYERS):
        bert_attention(f'{t}encoder.layer.{i}.attention', RH)
        bert_ffn(f'{t}encoder.layer.{i}', RH, RINTER)
    linear(t + 'pooler.dense', RH, RH)
    for stream in ('image', 'text'):
        for i in range(MFUSE):
            b = f'cross_modal_{stream}_layers.{i}'
            bert_attention(b + '.attention', MD)
            bert_attention(b + '.crossattention', MD)
            bert_ffn(b, MD, MINTER)
    linear('cross_modal_image_pooler.dense', MD, MD)
    linear('cross_modal_text_pooler.dense', MD, MD)
    # pre-training heads: MLM (not in any fine-tuning model -> unexpected) and ITM (Linear(2D -> 2))
    sd['mlm_score.bias'] = 0.1 * r(RVOCAB)
    linear('mlm_score.transform.dense', MD, MD)
    layernorm('mlm_score.transform.LayerNorm', MD)
    sd['mlm_score.decoder.weight'] = sd[t + 'embeddings.word_embeddings.weight']  # tied: one storage, two names
    sd['itm_score.fc.weight'] = r(2, 2 * MD) * (2 * MD) ** -0.5
    sd['itm_score.fc.bias'] = (0.1 * r(5))[3:]  # a view: storage of 5, offset 3

    config = {'image_size': CPATCH * CGRID, 'patch_size': CPATCH, 'hidden_size': MD, 'num_heads': MHEADS,
              'num_top_layer': MFUSE, 'mlp_ratio': MINTER // MD, 'max_text_len': MTEXT, 'vocab_size': RVOCAB,
              'vit': 'ViT-B/16', 'tokenizer': 'roberta-base', 'input_text_embed_size': RH, 'input_image_embed_size': CW}
    ckpt = {
        'epoch': 9,
        'global_step': 100000,
        'pytorch-lightning_version': '1.3.2',
        'state_dict': sd,
        'optimizer_states': [{'state': {0: {'step': 3, 'exp_avg': r(2)}}, 'param_groups': [{'lr': 1e-5, 'betas': (0.9, 0.98), 'params': [0]}]}],
        'lr_schedulers': [{'last_epoch': 100000, '_step_count': 100001}],
        'hyper_parameters': {'config': ReadOnlyDict(config)},
    }
    fake_module('sacred.config.custom_containers', ReadOnlyDict=ReadOnlyDict)
    os.makedirs(OUT, exist_ok=True)
    tmp = os.path.join(OUT, 'meter_tiny.ckpt.tmp')
    torch.save(ckpt, tmp)
    os.replace(tmp, os.path.join(OUT, 'meter_tiny.ckpt'))

    # spec 2.1 / METER adapt_position_encoding: CLS row kept, grid bicubic (align_corners False) to the run's grid
    pe = sd[v + 'positional_embedding']
    grid = pe[1:].reshape(CGRID, CGRID, CW).permute(2, 0, 1).unsqueeze(0)
    def resized(g):
        up = torch.nn.functional.interpolate(grid, size=(g, g), mode='bicubic', align_corners=False)
        out = torch.cat([pe[:1], up[0].permute(1, 2, 0).reshape(g * g, CW)], 0)
        return {'shape': list(out.shape), 'data': [float(x) for x in out.reshape(-1).tolist()]}
    doc = OrderedDict()
    doc['torch_version'] = torch.__version__
    doc['config'] = config
    doc['tensors'] = OrderedDict((k, host_expect(x)) for k, x in sd.items())
    doc['positional_embedding_resized'] = {'2': resized(2), '4': resized(4)}
    tmp = os.path.join(OUT, 'meter_tiny.expected.json.tmp')
    with open(tmp, 'w') as f:
        json.dump(doc, f)
    os.replace(tmp, os.path.join(OUT, 'meter_tiny.expected.json'))
    print('wrote', os.path.join(OUT, 'meter_tiny.ckpt'), 'with', len(sd), 'tensors, torch', torch.__version__)


def main(argv):
    out = OUT
    if '--out' in argv:
        i = argv.index('--out')
        out = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    bad = [a for a in argv if a not in ('vilt', 'meter')]
    if bad:
        sys.exit(f'make_ckpt_fixture.py: unknown argument(s) {bad}; usage: [vilt] [meter] [--out DIR]')
    which = set(argv) or {'vilt', 'meter'}
    if 'vilt' in which:
        write_vilt(out)
    if 'meter' in which:
        write_meter(out)

if __name__ == '__main__':
    main(sys.argv[1:])
