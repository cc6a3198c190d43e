# Writes test/fixtures/ckpt/legacy_torch.pt: a state dict saved by real PyTorch in the legacy (pre-zip, pickle +
# raw storages) torch.save format, with a transposed view sharing its storage and an int64 tensor.
# Run with Debian's torch: /usr/bin/python3 scripts/make_legacy_fixture.py
import collections, torch
sd = collections.OrderedDict(a=torch.arange(6, dtype=torch.float32).reshape(2, 3), b=torch.tensor([1, 2, 3], dtype=torch.int64))
sd['c'] = sd['a'].t()
torch.save({'state_dict': sd}, 'test/fixtures/ckpt/legacy_torch.pt', _use_new_zipfile_serialization=False)
