"""Generation speed of the embedded synthetic data: per stage (scene, appearance, files) and for whole folders.

Per image and per domain: `render_scene` (layout and rasterisation), `shade` (appearance), and writing the files
(source: GTA5 + SYNTHIA trees, 5 PNGs; target: Cityscapes, 3 PNGs). Then `generate` of a whole folder with 1 and 2
worker processes (the output is byte-identical; only the time differs), with the folder's size on disk. Wall-clock
and process CPU times (the CPU time of `generate` with workers counts only the parent process); on a machine shared
with other jobs the CPU times are the stable figures.
Run: `python benchmarks/bench_synthetic.py [--quick] [--n N] [--size W]`.
"""
from __future__ import annotations
import argparse, shutil, tempfile, time
from pathlib import Path
import numpy as np

from udabench.data.synthetic import (render_scene, shade, domain_params, image_hw, make_sample, write_source,
                                     write_target, cityscapes_stem, generate, make_folders, DOMAIN_CODE)


def _timed(f):
    w, c = time.perf_counter(), time.process_time()
    r = f()
    return r, time.perf_counter() - w, time.process_time() - c


def stage_rows(n:int, size:int, tmp:Path) -> list[dict]:
    rows = []
    for dom in ('src', 'trg'):
        p = domain_params('src' if dom == 'src' else 'trg')
        H, W = image_hw(dom, size)
        t = {k: [0., 0.] for k in ('scene', 'appearance', 'files')}
        def add(k, w, c): t[k][0] += w; t[k][1] += c
        for i in range(n):
            rng = np.random.default_rng([0, DOMAIN_CODE[dom], i])
            (cv, cam), w, c = _timed(lambda: render_scene(rng, p, H, W)); add('scene', w, c)
            _, w, c = _timed(lambda: shade(cv, rng, p)); add('appearance', w, c)
            s = make_sample(dom, i, size=size)
            if dom == 'src': _, w, c = _timed(lambda: write_source(tmp, i, s))
            else: _, w, c = _timed(lambda: write_target(tmp, 'train', cityscapes_stem('train', i), s))
            add('files', w, c)
        for stage, (w, c) in t.items():
            rows.append(dict(what=f'{dom} {stage}', images=n, size=f'{W}x{H}', wall_s=round(w, 3), cpu_s=round(c, 3),
                             cpu_ms_per_image=round(1000 * c / n, 2)))
    return rows


def folder_rows(n:int, size:int, tmp:Path) -> list[dict]:
    rows, kw = [], dict(n_src=n, n_trg_train=n, n_trg_heldout=n // 4, n_trg_val=n // 2, size=size)
    total = n + n + n // 4 + n // 2
    for workers in (1, 2):
        out = tmp/f'w{workers}'
        _, w, c = _timed(lambda: generate(out, workers=workers, **kw))
        mb = sum(f.stat().st_size for f in out.rglob('*') if f.is_file()) / 2**20
        rows.append(dict(what=f'generate, {workers} worker(s)', images=total, size=f'{size} wide', wall_s=round(w, 2),
                         images_per_s=round(total / w, 1), parent_cpu_s=round(c, 2), disk_mb=round(mb, 1)))
    return rows


def _table(rows):
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print('| ' + ' | '.join(keys) + ' |'); print('|' + '---|' * len(keys))
    for r in rows: print('| ' + ' | '.join(str(r.get(k, '')) for k in keys) + ' |')


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='fewer images')
    p.add_argument('--n', type=int, default=None, help='images per domain in the stage timings (folders: 2.75x)')
    p.add_argument('--size', type=int, default=256, help='image width')
    a = p.parse_args(argv)
    n = a.n or (10 if a.quick else 80)
    tmp = Path(tempfile.mkdtemp())
    try:
        make_sample('trg', 0, size=a.size)   # warm-up: loads the photo textures
        make_folders(tmp/"stages"); rows = stage_rows(n, a.size, tmp/"stages")
        print(f'synthetic data, per stage ({n} images per domain):'); _table(rows)
        frows = folder_rows(n, a.size, tmp)
        print('whole folders (source + target train/heldout/val):'); _table(frows)
        one, two = frows
        print(f"2 workers: {one['wall_s'] / two['wall_s']:.2f}x faster than 1 "
              f"({two['images_per_s']} vs {one['images_per_s']} images/s)")
        return rows + frows
    finally:
        shutil.rmtree(tmp)


if __name__ == '__main__':
    main()
