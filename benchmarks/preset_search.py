"""Candidate bench presets: what the oracle and source-only reach, and at what cost, on the embedded shift.

`udabench bench`'s table is only as informative as its task: an oracle that cannot learn the thing classes cannot show
which method helps on them. This script trains source-only and the oracle (target labels) under candidate presets
(training size, output stride, decoder, width, blocks, iterations) on the same embedded data, one thread per run and two runs
at a time (as `udabench bench` runs), and prints for each: the oracle's mIoU, its lowest thing-class IoU, the
source-only / oracle ratio, and the seconds of each run. It is the measurement behind the presets of `udabench.bench`.

`--sizes` prints instead, from the label files of the target test split, each class's share of the pixels and the median
size (pixels) of its connected components at 256x128 and at 128x64: how small each thing class is at each size.

Run: `python benchmarks/preset_search.py [--quick] [--only NAME,...] [--jobs 2] [--sizes]`.
"""
from __future__ import annotations
import argparse, json, sys, time
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
import tempfile

THINGS = ('pole', 'traffic light', 'traffic sign', 'person', 'rider', 'car', 'truck', 'bus', 'motorcycle', 'bicycle')


def candidates(quick:bool=False) -> dict:
    "Name -> (preset overrides, model out_stride)."
    from udabench.bench import PRESETS
    q = PRESETS['quick']
    def cand(size, iters, decoder=None, stride=8):   # the quick preset's model and data, at `size` (target W,H)
        w, h = size
        return dict(src_size=(w, h * 9 // 8), trg_size=size, synth_size=256, width=32, blocks=(1, 1, 1), src_iters=iters,
                    decoder=decoder), stride
    c = {   # the first search: size, output stride, iterations (no decoder)
        'q128_os8': cand((128, 64), 600),
        'q128_os4': cand((128, 64), 600, stride=4),
        'q256_os8': cand((256, 128), 600),
        'q256_os8_1500': cand((256, 128), 1500),
        'q256_os4': cand((256, 128), 600, stride=4),
        # the second search: 128x64 at stride 8 with the small model's decoder (logits refined at 1/2), and its control
        'q128_os8_1800': cand((128, 64), 1800),
        'q128_dec': cand((128, 64), 600, 'stem'),
        'q128_dec_1200': cand((128, 64), 1200, 'stem'),
        'q128_dec_1800': cand((128, 64), 1800, 'stem'),
    }
    if quick: c = {k: (dict(v[0], src_iters=20), v[1]) for k, v in list(c.items())[:2]}
    return {k: (replace(q, eval_every=0, **o), s) for k, (o, s) in c.items()}


def _job(args):
    name, method, preset, stride, out = args
    import torch
    torch.set_num_threads(1)
    from udabench.bench import embedded_config
    from udabench.experiments import run_experiment
    cfg = embedded_config(method, preset.data(), preset=preset, out=str(Path(out)/name))
    cfg.model.kwargs = dict(cfg.model.kwargs or {}, out_stride=stride)
    cfg.train.progress = False
    t0 = time.perf_counter()
    res = run_experiment(cfg)
    best = res.get('selected', res['last'])
    return dict(preset=name, method=method, miou=100 * best['miou'], seconds=time.perf_counter() - t0,
                per_class={c: (100 * v if v == v else None) for c, v in best['per_class_iou'].items()})


def sizes(root, scales=(1, 2)):
    "Print each class's pixel share and median connected-component size in the target test labels, at full and 1/2 size."
    import numpy as np
    from PIL import Image
    from scipy import ndimage
    from udabench.data.labels import _CS_TO_19
    lut = np.full(256, 255, np.uint8)
    for k, v in (_CS_TO_19.items() if isinstance(_CS_TO_19, dict) else enumerate(_CS_TO_19)): lut[k] = v
    names = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign', 'vegetation', 'terrain',
             'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')
    files = sorted((Path(root)/'cityscapes'/'gtFine'/'val').glob('*/*_labelIds.png'))
    for s in scales:
        px, comps = np.zeros(len(names)), [[] for _ in names]
        for f in files:
            a = lut[np.array(Image.open(f))][::s, ::s]
            for c in range(len(names)):
                m = a == c
                if m.any():
                    px[c] += m.sum(); lab, _ = ndimage.label(m); comps[c] += list(np.bincount(lab.ravel())[1:])
        print(f"\n{len(files)} target test label maps at {a.shape[1]}x{a.shape[0]} (nearest, stride {s}):")
        print('| class | pixel share (%) | components | median component (pixels) |\n|---|---|---|---|')
        for c, n in enumerate(names):
            if px[c]: print(f"| {n} | {100 * px[c] / px.sum():.2f} | {len(comps[c])} | {np.median(comps[c]):.1f} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='two candidates, 20 iterations (a pipeline check)')
    p.add_argument('--only', help='comma-separated candidate names')
    p.add_argument('--jobs', type=int, default=2)
    p.add_argument('--sizes', action='store_true', help='print the classes\' component sizes in the target labels and exit')
    a = p.parse_args(argv)
    if a.sizes:
        from udabench.bench import PRESETS
        return sizes(PRESETS['quick'].data())
    cands = candidates(a.quick)
    if a.only: cands = {k: v for k, v in cands.items() if k in a.only.split(',')}
    for pr, _ in cands.values(): pr.data(workers=a.jobs)   # generate the data first, outside the timed runs
    out = tempfile.mkdtemp(prefix='udabench_presets_')
    todo = [(n, m, pr, s, out) for n, (pr, s) in cands.items() for m in ('oracle', 'source_only')]
    with get_context('spawn').Pool(a.jobs) as pool: recs = pool.map(_job, todo, chunksize=1)
    rows = []
    print('| preset | train size | out stride | decoder | iters | oracle mIoU | lowest thing IoU (class) | things < 15 | source-only mIoU | ratio | oracle s | source s |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|')
    for n, (pr, s) in cands.items():
        o = next(r for r in recs if r['preset'] == n and r['method'] == 'oracle')
        so = next(r for r in recs if r['preset'] == n and r['method'] == 'source_only')
        th = {c: o['per_class'][c] for c in THINGS if o['per_class'].get(c) is not None}
        lo = min(th, key=th.get)
        row = dict(preset=n, size=f"{pr.trg_size[0]}x{pr.trg_size[1]}", out_stride=s, decoder=pr.decoder or '-', iters=pr.src_iters, oracle=round(o['miou'], 1),
                   lowest_thing=f"{th[lo]:.1f} ({lo})", things_below_15=sum(v < 15 for v in th.values()),
                   source_only=round(so['miou'], 1), ratio=round(so['miou'] / o['miou'], 2),
                   oracle_s=round(o['seconds']), source_s=round(so['seconds']))
        rows.append(row)
        print('| ' + ' | '.join(str(v) for v in row.values()) + ' |', flush=True)
    print('\noracle per-class IoU (thing classes):')
    for n in cands:
        o = next(r for r in recs if r['preset'] == n and r['method'] == 'oracle')
        print(n, json.dumps({c: round(o['per_class'][c], 1) for c in THINGS if o['per_class'].get(c) is not None}))
    return rows


if __name__ == '__main__': main()
