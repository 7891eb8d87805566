"""Pixel-embedding times: t-SNE (scikit-learn, openTSNE), UMAP, the feature-space numbers, and the explorer's redraw latency.

Data: N synthetic "pixel features" of dimension D (default 20,000 x 256): 19 classes x 2 domains, class centres in D-d,
a per-class domain offset and Gaussian noise, class-balanced as `udabench.viz.embeddings` samples them. Every embedding is
`udabench.viz.embeddings.embed` (PCA to 50 dimensions, then the 2-D method), seeded:
* t-SNE scikit-learn (all cores), openTSNE on 1 thread (udabench's default: identical results everywhere) and on all cores;
* UMAP (umap-learn, seeded, hence single-threaded) twice in a fresh process: the first fit includes numba compilation
  (less when numba's on-disk cache is warm), the second is the steady-state cost;
* `embedding_metrics` (per-class kNN domain mixing on all points, silhouette on a 4,000-point stratified subsample);
* the explorer (`udabench.viz.widgets.Explorer`): once its caches are full, the wall time of a control change (image
  slider, model dropdown, map buttons) until the new PNG is in the view, with an embedding of about N points
  (computed by PCA, since only the drawing is timed).
Times are wall-clock and process CPU seconds. Run: `python benchmarks/bench_embeddings.py [--quick] [--n N] [--dim D]
[--skip sklearn,opentsne,umap,metrics,explorer]`. The default size needs about 5.5 CPU-minutes (scikit-learn's t-SNE
alone nearly 3), so 3 to 5 minutes on an idle 2-core machine: more than the 2 minutes other benchmarks keep to, because
20,000 pixels is the size people embed; `--skip sklearn` saves most of it. `--quick` (2,000 points) needs about one
CPU-minute. On a machine shared with other jobs, compare the cpu_s column: wall times then grow with the load.
"""
from __future__ import annotations
import argparse, multiprocessing as mp, os, statistics, time
# idle OpenMP workers sleep instead of spinning: on a machine shared with other jobs this keeps multi-threaded runs honest
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
import numpy as np


def make_features(n:int, dim:int, n_cls:int=19, seed:int=0):
    "(x (n,dim) float32, cls (n,), domain (n,)): class-balanced clusters per domain with a per-class domain shift."
    rng = np.random.default_rng(seed)
    # scales chosen so that classes overlap and domains are partly aligned (mixing ~0.45, silhouette ~0.14), as in real features
    centres = rng.standard_normal((n_cls, dim)).astype(np.float32) * 0.8
    shift = rng.standard_normal((n_cls, dim)).astype(np.float32) * 0.5
    cls = np.arange(n) % n_cls
    dom = (np.arange(n) // n_cls) % 2
    x = centres[cls] + dom[:, None] * shift[cls] + rng.standard_normal((n, dim)).astype(np.float32)
    return np.maximum(x, 0), cls, dom  # ReLU-like, as backbone features are


def _timed(f):
    t, c = time.perf_counter(), time.process_time()
    r = f()
    return r, time.perf_counter() - t, time.process_time() - c


def _umap_child(n, dim, q):
    "In a fresh process: two seeded UMAP fits; puts [(wall, cpu), (wall, cpu)] on `q`."
    import warnings; warnings.filterwarnings('ignore', message='n_jobs value')
    from udabench.viz.embeddings import embed
    x, _, _ = make_features(n, dim)
    out = []
    for _ in range(2):
        _, w, c = _timed(lambda: embed(x, 'umap', seed=0)); out.append((w, c))
    q.put(out)


def explorer_latency(n_points:int, changes:int=12):
    "Build an Explorer whose cached embedding has about `n_points` pixels; time `changes` control changes."
    import torch
    from udabench.models.checkpoints import build_model
    from udabench.viz.widgets import Explorer, toy_samples
    def make(s):
        torch.manual_seed(s); return build_model(dict(name='small', n_cls=4, width=16, kwargs=dict(out_stride=4)))
    n_img = 12
    per_class = max(10, n_points // (2 * 4))  # 2 datasets x 4 classes
    data = {'src': toy_samples(n_img, size=(192, 384), seed=0, prefix='src'),
            'trg': toy_samples(n_img, size=(192, 384), shift=1.0, seed=1, labelled=False, prefix='trg')}
    ex = Explorer(data, {'source only': make(0), 'adapted': make(1)}, layers=['feat'], method='pca',
                  n_per_class=per_class, seed=0)
    _, w_pre, _ = _timed(ex.precompute)
    n_emb = len(ex._emb[('source only', 'feat')][0])
    lat, cpu, kinds = [], [], []
    seq = [('index', i % n_img) for i in range(1, changes // 2 + 1)] + [('model', 'adapted'), ('model', 'source only')] + \
          [('map', m) for m in ('confidence', 'error', 'depth', 'entropy')]
    for ctl, v in seq[:changes]:
        w = getattr(ex, ctl)
        if w.value == v: continue
        _, t, c = _timed(lambda: setattr(w, 'value', v))
        lat.append(t); cpu.append(c); kinds.append(ctl)
    return dict(n_emb=n_emb, lat=lat, cpu=cpu, kinds=kinds, precompute_s=w_pre)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='2,000 points instead of 20,000')
    p.add_argument('--n', type=int, default=None, help='number of pixels')
    p.add_argument('--dim', type=int, default=256, help='feature dimension')
    p.add_argument('--skip', default='', help='comma-separated parts to skip: sklearn,opentsne,umap,metrics,explorer')
    a = p.parse_args(argv)
    n = a.n or (2000 if a.quick else 20000)
    skip = set(filter(None, a.skip.split(',')))
    from udabench.viz.embeddings import embed, embedding_metrics, PixelSet
    x, cls, dom = make_features(n, a.dim)
    rows = []
    def row(what, backend, threads, wall, cpu, note=''):
        rows.append(dict(what=what, backend=backend, threads=threads, n=n, dim=a.dim, wall_s=round(wall, 2),
                         cpu_s=round(cpu, 2), note=note))
        print(f"  {what} [{backend}, {threads}]: {wall:.2f} s", flush=True)
    cores = os.cpu_count()
    if 'opentsne' not in skip:
        for nj in (1, -1):
            _, w, c = _timed(lambda: embed(x, 'tsne', seed=0, backend='opentsne', n_jobs=nj))
            row('t-SNE', 'openTSNE', 1 if nj == 1 else cores, w, c)
    if 'sklearn' not in skip:
        _, w, c = _timed(lambda: embed(x, 'tsne', seed=0, backend='sklearn', n_jobs=-1))
        row('t-SNE', 'scikit-learn', cores, w, c)
    if 'umap' not in skip:
        ctx = mp.get_context('spawn'); q = ctx.Queue()
        pr = ctx.Process(target=_umap_child, args=(n, a.dim, q)); pr.start()
        (w1, c1), (w2, c2) = q.get(); pr.join()
        row('UMAP', 'umap-learn', 1, w1, c1, 'first fit in a fresh process (numba compilation)')
        row('UMAP', 'umap-learn', 1, w2, c2, 'second fit, same process')
    if 'metrics' not in skip:
        ps = PixelSet(x, cls, dom, np.zeros((n, 3), np.int64), ('src', 'trg'))
        m, w, c = _timed(lambda: embedding_metrics(ps, k=10))
        row('feature-space numbers', 'kNN mixing + silhouette', 1, w, c,
            f"mixing {m['mixing_mean']:.3f}, silhouette {m['silhouette_mean']:.3f} (silhouette on 4000 points)")
    if 'explorer' not in skip:
        r = explorer_latency(n)
        lat = r['lat']
        by = {k: [t for t, kk in zip(lat, r['kinds']) if kk == k] for k in dict.fromkeys(r['kinds'])}
        rows.append(dict(what='explorer control change (cached)', backend='matplotlib Agg -> PNG', threads=1, n=r['n_emb'],
                         dim=64, wall_s=round(statistics.median(lat), 3), cpu_s=round(statistics.median(r['cpu']), 3),
                         note=f"median of {len(lat)} changes (" + ', '.join(f"{k} {statistics.median(v):.2f}" for k, v in by.items()) +
                              f"); max {max(lat):.3f} s; filling the caches took {r['precompute_s']:.1f} s"))
        print(f"  explorer: median {statistics.median(lat):.3f} s, max {max(lat):.3f} s over {len(lat)} changes "
              f"({r['n_emb']} embedded points)", flush=True)
    keys = ['what', 'backend', 'threads', 'n', 'dim', 'wall_s', 'cpu_s', 'note']
    print(f"\npixel embeddings: {n} x {a.dim} features ({cores} cores, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')})")
    print('| ' + ' | '.join(keys) + ' |'); print('|' + '---|' * len(keys))
    for r in rows: print('| ' + ' | '.join(str(r[k]) for k in keys) + ' |')
    t = {(r['what'], r['backend'], r['threads']): r['wall_s'] for r in rows}
    sk = t.get(('t-SNE', 'scikit-learn', cores)); o1 = t.get(('t-SNE', 'openTSNE', 1)); oc = t.get(('t-SNE', 'openTSNE', cores))
    if sk and o1: print(f"openTSNE vs scikit-learn t-SNE: {sk / o1:.1f}x faster on 1 thread" + (f", {sk / oc:.1f}x on {cores}" if oc else ''))
    return rows


if __name__ == '__main__':
    main()
