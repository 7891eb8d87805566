"""Training-data throughput per core: udabench's pipeline vs a plain PIL pipeline of the kind the seeds use.

Both read the same GTA5-format files written here at the real resolution (1914x1052 RGB PNG images with smooth regions
and sensor-like noise, palettised 1914x1052 label PNGs holding Cityscapes label ids), then: decode -> resize to
1280x720 (image bicubic, label nearest) -> random horizontal flip -> Gaussian blur with p=0.5, radius U(0,1) ->
caffe normalisation (BGR, minus the mean) -> train ids -> tensors.
* seed-style (MaxSquare / ADVENT loaders): PIL open/convert, PIL resize, PIL flip and GaussianBlur, numpy float32
  BGR mean subtraction, label ids mapped with one masked assignment per id.
* udabench: `GTA5` dataset (torchvision.io.decode_png, table lookup `remap`) + `train_transform` (torchvision v2 on
  uint8 tensors), under a per-sample seed exactly as the paired loader runs it.
* udabench with `cache=True` (`DataCfg.cache`): the decoded samples kept in memory after a first pass (timed after it),
  so only the transforms run per draw.
One process, one torch thread: images/s per core. Run: `python benchmarks/bench_data.py [--quick] [--n N]`.
"""
from __future__ import annotations
import argparse, random, shutil, tempfile, time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from udabench.data.datasets import GTA5, cityscapes_palette, read_png, read_rgb, save_palettised
from udabench.data.labels import get_lut
from udabench.data.loaders import _Draws, _mix
from udabench.data.transforms import IMG_MEAN, train_transform

IDS = np.array([7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33, 0, 1, 4])


def write_gta5(root:Path, n:int, hw=(1052, 1914), seed:int=0):
    "`n` GTA5-format pairs under `root` (images/, labels/, lists/train.txt)."
    rng = np.random.default_rng(seed)
    (root/'images').mkdir(parents=True, exist_ok=True); (root/'labels').mkdir(exist_ok=True)
    pal = cityscapes_palette(gta5=True)
    for i in range(1, n + 1):
        regions = rng.integers(0, len(IDS), (12, 20))
        reg = np.kron(regions, np.ones((hw[0] // 12 + 1, hw[1] // 20 + 1), np.int64))[:hw[0], :hw[1]]
        base = rng.integers(30, 220, (len(IDS), 3))[reg].astype(np.float32)
        y, x = np.mgrid[0:hw[0], 0:hw[1]].astype(np.float32)
        img = base + 25 * np.sin(x / 40 + i)[..., None] * np.cos(y / 60)[..., None] + rng.normal(0, 6, (*hw, 3))
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(root/'images'/f'{i:05d}.png')
        save_palettised(root/'labels'/f'{i:05d}.png', IDS[reg].astype(np.uint8), pal)
    (root/'lists').mkdir(exist_ok=True)
    (root/'lists'/'train.txt').write_text(''.join(f'{i:05d}.png\n' for i in range(1, n + 1)))


class SeedStyle:
    "A MaxSquare/ADVENT-style GTA5 loader: PIL decode, resize, flip, blur; numpy normalisation; id loop."
    def __init__(self, root:Path, size=(1280, 720)):
        self.root, self.size = root, size
        self.names = (root/'lists'/'train.txt').read_text().split()
        self.id_to_trainid = {i: int(t) for i, t in enumerate(get_lut('cityscapes', 'cityscapes19')[:34]) if t != 255}
    def __len__(self): return len(self.names)
    def __getitem__(self, i):
        img = Image.open(self.root/'images'/self.names[i]).convert('RGB')
        lbl = Image.open(self.root/'labels'/self.names[i])
        img, lbl = img.resize(self.size, Image.BICUBIC), lbl.resize(self.size, Image.NEAREST)
        if random.random() < 0.5:
            img, lbl = img.transpose(Image.FLIP_LEFT_RIGHT), lbl.transpose(Image.FLIP_LEFT_RIGHT)
        if random.random() < 0.5: img = img.filter(ImageFilter.GaussianBlur(radius=random.random()))
        x = np.asarray(img, np.float32)[:, :, ::-1] - np.array(IMG_MEAN, np.float32)
        x = torch.from_numpy(x.transpose(2, 0, 1).copy())
        raw = np.asarray(lbl, np.float32)
        out = 255 * np.ones(raw.shape, np.float32)
        for k, v in self.id_to_trainid.items(): out[raw == k] = v
        return {'img': x, 'lbl': torch.from_numpy(out.astype(np.int64))}


def _time(fn, n):
    fn(0)   # warm-up
    t, c = time.perf_counter(), time.process_time()
    for i in range(n): fn(i)
    return time.perf_counter() - t, time.process_time() - c


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='3 images instead of 8')
    p.add_argument('--n', type=int, default=None, help='number of images')
    p.add_argument('--repeat', type=int, default=2, help='passes over the images')
    a = p.parse_args(argv)
    n = a.n or (3 if a.quick else 8)
    threads = torch.get_num_threads(); torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp())
    try:
        write_gta5(tmp/'GTA5', n)
        seed = SeedStyle(tmp/'GTA5')
        ours = _Draws(GTA5(tmp/'GTA5'), train_transform((1280, 720), flip=0.5, blur='maxsquare', norm='caffe'))
        random.seed(0)
        checks = (ours[(0, _mix(0, 'src', 0))], seed[0])
        for s in checks: assert s['img'].shape == (3, 720, 1280) and s['lbl'].shape == (720, 1280)
        m = a.repeat * n
        w_s, c_s = _time(lambda i: seed[i % n], m)
        w_u, c_u = _time(lambda i: ours[(i % n, _mix(0, 'src', i))], m)
        cached = _Draws(ours.ds, ours.tf, cache={})
        for i in range(n): cached[(i, 0)]   # fill the cache
        w_c, c_c = _time(lambda i: cached[(i % n, _mix(0, 'src', i))], m)
        _, dec_s = _time(lambda i: (np.asarray(Image.open(tmp/'GTA5'/'images'/seed.names[i % n]).convert('RGB')),
                                    np.asarray(Image.open(tmp/'GTA5'/'labels'/seed.names[i % n]))), m)
        _, dec_u = _time(lambda i: (read_rgb(ours.ds.items[i % n]['img']), read_png(ours.ds.items[i % n]['lbl'])), m)
    finally:
        shutil.rmtree(tmp); torch.set_num_threads(threads)
    rows = [dict(pipeline='seed-style PIL + numpy', images=m, wall_s=round(w_s, 3), cpu_s=round(c_s, 3),
                 images_per_s_per_core=round(m / c_s, 2), decode_only_per_s=round(m / dec_s, 2), speedup=1.0),
            dict(pipeline='udabench (decode_png + v2 uint8)', images=m, wall_s=round(w_u, 3), cpu_s=round(c_u, 3),
                 images_per_s_per_core=round(m / c_u, 2), decode_only_per_s=round(m / dec_u, 2), speedup=round(c_s / c_u, 2)),
            dict(pipeline='udabench, decoded samples cached', images=m, wall_s=round(w_c, 3), cpu_s=round(c_c, 3),
                 images_per_s_per_core=round(m / c_c, 2), decode_only_per_s=None, speedup=round(c_s / c_c, 2))]
    keys = list(rows[0])
    print(f"training-data throughput, 1 process, 1 torch thread: {n} GTA5-format 1914x1052 pairs x {a.repeat} passes -> "
          f"1280x720, flip, blur p=0.5, caffe normalisation (speedup = seed-style CPU time / this CPU time)")
    print('| ' + ' | '.join(keys) + ' |'); print('|' + '---|' * len(keys))
    for r in rows: print('| ' + ' | '.join(str(r[k]) for k in keys) + ' |')
    print(f"udabench {rows[1]['images_per_s_per_core']} img/s per core vs seed-style {rows[0]['images_per_s_per_core']} "
          f"-> {rows[1]['speedup']:.2f}x (decode alone: {rows[1]['decode_only_per_s']} vs {rows[0]['decode_only_per_s']} pairs/s); "
          f"with the decoded samples cached {rows[2]['images_per_s_per_core']} img/s per core ({rows[2]['speedup']:.2f}x)")
    return rows


if __name__ == '__main__':
    main()
