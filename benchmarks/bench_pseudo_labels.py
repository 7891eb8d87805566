"""Peak memory and time of pseudo-label generation: udabench's streaming passes vs the references' in-memory procedure.

All label the target training images of the embedded synthetic data (resized to `--size`, default 512x256) with the
same small model and the same median rule (per-class median of the max-probabilities, capped at 0.9):

* udabench, exact selection (`udabench.train.pseudo_labels.generate_pseudo_labels`, the default): pass 1 counts the
  upper 16 bits of the max-probabilities per class, pass 2 runs the model again and counts the lower 16 bits inside
  each class's selected upper half (the exact median), pass 3 writes the PNGs; nothing grows with the number of images.
* udabench, `selection='histogram'`: pass 1 fills 1000-bin histograms (the median up to one bin), pass 2 writes the PNGs.
* reference procedure (SDCA `pseudo_label.py`): pass 1 keeps the max-probability (float32) and the argmax (int64) of
  every pixel of every image in memory, sorts them per class, then pass 2 writes the PNGs.

Each (procedure, image count) runs in its own process; the resident set size (RSS) is sampled every 5 ms with psutil
from just before the procedure starts (model built, one warm-up batch done) to its end. Reported: the peak RSS, its
increase over that starting point, the growth of the peak from N to 4N images (target for udabench: < 10 %), the time
(CPU) of the exact selection over that of the histogram selection, and how far each one's thresholds are from the reference's.
Run: `python benchmarks/bench_pseudo_labels.py [--quick] [--n N] [--size W H] [--bs B]`.
"""
from __future__ import annotations
import argparse, json, os, subprocess, sys, tempfile, threading, time
from pathlib import Path
import numpy as np
import torch


def _loader(n:int, size, bs:int):
    "A sequential loader over the first `n` embedded target training images at `size` (W,H), without labels."
    from udabench.bench import PRESETS
    from udabench.data.synthetic import ensure_synthetic
    from udabench.data.datasets import Cityscapes
    from udabench.data.transforms import eval_transform
    p = PRESETS['quick']
    root = ensure_synthetic(n_src=p.n_src, n_trg_train=p.n_trg, n_trg_heldout=p.n_heldout, n_trg_val=p.n_test)
    ds = Cityscapes(root/'cityscapes', 'train', labels=False)
    if n > len(ds): raise SystemExit(f"only {len(ds)} embedded target images; ask for at most {len(ds) // 4} with --n")
    tf = eval_transform(tuple(size), 'imagenet')
    sub = torch.utils.data.Subset(ds, range(n))
    class _T(torch.utils.data.Dataset):
        def __len__(self): return len(sub)
        def __getitem__(self, i): return tf(sub[i])
    return torch.utils.data.DataLoader(_T(), batch_size=bs, shuffle=False, num_workers=0)


def reference_procedure(model, loader, out_dir, n_cls:int, q:float=0.5, cap:float=0.9):
    "The references' in-memory median rule: keep every max-probability and argmax, sort per class, then write the PNGs."
    import torch.nn.functional as F
    from udabench.train.pseudo_labels import reference_thresholds, write_label_png
    probs, preds = [], []
    with torch.no_grad():
        for b in loader:
            x = b['img']
            p = F.interpolate(model(x)['logits'], size=x.shape[-2:], mode='bilinear', align_corners=True).softmax(1).max(1)
            probs.append(p.values.numpy().astype(np.float32).ravel()); preds.append(p.indices.numpy().astype(np.int64).ravel())
        maxp, pred = np.concatenate(probs), np.concatenate(preds)   # the reference grows one array with np.append
        thr = reference_thresholds(maxp, pred, n_cls, q, cap)
        for b in loader:
            x = b['img']
            p = F.interpolate(model(x)['logits'], size=x.shape[-2:], mode='bilinear', align_corners=True).softmax(1).max(1)
            lab = torch.where(p.values >= torch.from_numpy(thr).float()[p.indices], p.indices, 255).to(torch.uint8).numpy()
            for j, name in enumerate(b['name']):
                f = Path(out_dir)/f'{name}.png'; f.parent.mkdir(parents=True, exist_ok=True); write_label_png(f, lab[j])
    return thr


KINDS = ('udabench exact', 'udabench histogram', 'reference')
SELECTION = {'udabench exact': 'exact', 'udabench histogram': 'histogram'}


def worker(kind:str, n:int, size, bs:int) -> dict:
    "Run one procedure on `n` images in this process and measure its RSS."
    import psutil
    from udabench.models.checkpoints import build_model
    from udabench.train.pseudo_labels import generate_pseudo_labels
    torch.manual_seed(0); torch.set_num_threads(min(2, os.cpu_count() or 1))
    model = build_model({'name': 'small', 'n_cls': 19, 'width': 32}).eval()
    loader = _loader(n, size, bs)
    with torch.no_grad(): model(next(iter(loader))['img'])          # warm-up: allocator, kernels, first image read
    proc, peak, stop = psutil.Process(), [0], threading.Event()
    def sample():
        while not stop.is_set(): peak[0] = max(peak[0], proc.memory_info().rss); stop.wait(0.005)
    start = proc.memory_info().rss
    th = threading.Thread(target=sample, daemon=True); th.start()
    t, c = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as d:
        if kind == 'reference': thr = reference_procedure(model, loader, d, 19).tolist()
        else: thr = generate_pseudo_labels(model, loader, d, save_every=20, selection=SELECTION[kind])['thresholds']
        files = sum(1 for _ in Path(d).rglob('*.png'))
    secs, cpu = time.perf_counter() - t, time.process_time() - c
    stop.set(); th.join()
    return dict(kind=kind, n=n, files=files, start_mb=start / 2**20, peak_mb=peak[0] / 2**20,
                increase_mb=(peak[0] - start) / 2**20, seconds=secs, cpu_seconds=cpu, thresholds=thr)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='N = 6 images instead of 16')
    p.add_argument('--n', type=int, default=None, help='N (the runs use N and 4N images)')
    p.add_argument('--size', type=int, nargs=2, default=[512, 256], metavar=('W', 'H'), help='image size of the passes')
    p.add_argument('--bs', type=int, default=4)
    p.add_argument('--worker', choices=KINDS, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    n = a.n or (6 if a.quick else 16)
    if a.worker:
        print(json.dumps(worker(a.worker, n, a.size, a.bs))); return []
    res = {}
    for kind in KINDS:
        for k in (n, 4 * n):
            cmd = [sys.executable, __file__, '--worker', kind, '--n', str(k), '--size', *map(str, a.size), '--bs', str(a.bs)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode: raise SystemExit(f"{kind} with {k} images failed:\n{r.stderr[-3000:]}")
            res[kind, k] = json.loads(r.stdout.strip().splitlines()[-1])
    rows = []
    for kind in KINDS:
        a1, a4 = res[kind, n], res[kind, 4 * n]
        for r in (a1, a4):
            rows.append(dict(procedure=kind, images=r['n'], pngs=r['files'], peak_rss_mb=round(r['peak_mb'], 1),
                             increase_mb=round(r['increase_mb'], 1), seconds=round(r['seconds'], 2),
                             cpu_s=round(r['cpu_seconds'], 2),
                             peak_growth_vs_N=f"{100 * (r['peak_mb'] / a1['peak_mb'] - 1):+.1f} %"))
    keys = list(rows[0])
    print(f"pseudo-label generation, median rule, {a.size[0]}x{a.size[1]} images, batch {a.bs}, small model (width 32), "
          f"{torch.get_num_threads()} threads")
    print('| ' + ' | '.join(keys) + ' |'); print('|' + '---|' * len(keys))
    for r in rows: print('| ' + ' | '.join(str(r[k]) for k in keys) + ' |')
    ue, uh, ra = (res[k, 4 * n] for k in KINDS)
    print(f"increase of the peak over the start, {4 * n} vs {n} images: udabench exact {ue['increase_mb']:.1f} vs "
          f"{res[KINDS[0], n]['increase_mb']:.1f} MB, udabench histogram {uh['increase_mb']:.1f} vs "
          f"{res[KINDS[1], n]['increase_mb']:.1f} MB, reference {ra['increase_mb']:.1f} vs {res['reference', n]['increase_mb']:.1f} MB")
    # CPU time (all threads of the worker): less disturbed than wall time by other processes on a shared machine
    ratio = {k: res[KINDS[0], k]['cpu_seconds'] / res[KINDS[1], k]['cpu_seconds'] for k in (n, 4 * n)}
    print(f"CPU time of the exact selection / the histogram selection: {ratio[n]:.2f} ({n} images), {ratio[4 * n]:.2f} "
          f"({4 * n} images); extra time of the exact pass: {100 * (ratio[4 * n] - 1):+.0f} % ({4 * n} images)")
    for kind, u in ((KINDS[0], ue), (KINDS[1], uh)):
        d = max(abs(x - y) for x, y in zip(u['thresholds'], ra['thresholds']))
        print(f"largest threshold difference |{kind} - reference| ({4 * n} images): {d:.6f}"
              + (' (bit-for-bit equal)' if u['thresholds'] == ra['thresholds'] else '') + (' (histogram bin width 0.001)' if 'histogram' in kind else ''))
    return rows


if __name__ == '__main__':
    main()
