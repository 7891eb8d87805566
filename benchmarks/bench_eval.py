"""Evaluation throughput: udabench's streaming `evaluate` vs a per-image numpy evaluation of the kind the seeds use.

Both score the same tiny stride-8 model on the same synthetic street-like scenes: 1024x512 input images and
2048x1024 label maps in raw Cityscapes label ids, logits upsampled to the full label size (the SIM/SDCA/Depth
protocol). The seed-style loop does, per image: upsample, `numpy.argmax` over the channel axis of the HxWxC array,
map label ids to train ids with one masked assignment per id (SIM's `label_mapping`), `np.bincount` histogram.
udabench: label ids mapped with one table lookup (`remap`), `upsample_argmax` (interpolates only near class
boundaries) and a single `bincount` per batch into a confusion matrix on the device. Times are wall-clock and process
CPU time, per torch thread count: on a machine shared with other jobs, multi-threaded runs of many small tensor ops
wait on descheduled worker threads, so compare rows of the same thread count. Run: `python benchmarks/bench_eval.py [--quick] [--n N] [--bs B] [--device cpu]`.
"""
from __future__ import annotations
import argparse, os, time
# Idle OpenMP workers sleep instead of spinning: on a machine shared with other jobs, spinning workers of many
# short tensor ops wait on descheduled threads and multiply wall time. Applies to both evaluations alike.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

from udabench.data.labels import get_lut, remap
from udabench.evaluate import evaluate, EvalCfg


IDS = np.array([7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33, 0, 1, 4, 6])  # 19 classes + void
COLOURS = np.random.default_rng(0).normal(size=(len(IDS), 3)).astype(np.float32)

class TinySeg(nn.Module):
    """A stride-8 model small enough that evaluation itself dominates: 8x8 average pooling, then a 1x1 convolution
    scoring the nearest class colour (logit = 2 x.mu_c - |mu_c|^2), so predictions follow the scene's regions."""
    n_cls = 19
    def __init__(self):
        super().__init__()
        self.pool, self.cls = nn.AvgPool2d(8), nn.Conv2d(3, 19, 1)
        mu = torch.from_numpy(COLOURS[:19])
        with torch.no_grad(): self.cls.weight.copy_(2 * mu[:, :, None, None]); self.cls.bias.copy_(-(mu ** 2).sum(1))
    def forward(self, x): return {'logits': self.cls(self.pool(x))}


def make_data(n:int, seed:int=0, size=(512, 1024), lbl_size=(1024, 2048)):
    "`n` synthetic scenes: blocky region maps drawn as images (`size`) and as raw Cityscapes label-id maps (`lbl_size`)."
    rng = np.random.default_rng(seed)
    ids, colours = IDS, COLOURS
    imgs, lbls = [], []
    for _ in range(n):
        regions = rng.integers(0, len(ids), size=(16, 32))
        ry, rx = size[0] // 16, size[1] // 32
        img = colours[np.kron(regions, np.ones((ry, rx), np.int64))].transpose(2, 0, 1)
        img = img + 0.3 * rng.normal(size=img.shape).astype(np.float32)
        imgs.append(torch.from_numpy(np.ascontiguousarray(img)))
        ly, lx = lbl_size[0] // 16, lbl_size[1] // 32
        lbls.append(ids[np.kron(regions, np.ones((ly, lx), np.int64))].astype(np.uint8))
    return torch.stack(imgs), np.stack(lbls)


def seed_style_eval(model, imgs, raw_lbls, n_cls=19):
    "Per-image CPU/numpy evaluation as in the seeds' evaluation scripts; returns (mIoU nanmean, per-class IoU)."
    mapping = [(int(i), int(t)) for i, t in enumerate(get_lut('cityscapes', 'cityscapes19')[:34])]
    interp = nn.Upsample(size=raw_lbls.shape[-2:], mode='bilinear', align_corners=True)
    hist = np.zeros((n_cls, n_cls), np.int64)
    model.eval()
    with torch.no_grad():
        for img, raw in zip(imgs, raw_lbls):
            out = interp(model(img[None])['logits']).cpu().data[0].numpy().transpose(1, 2, 0)
            pred = np.asarray(np.argmax(out, axis=2), dtype=np.uint8)
            lbl = raw.copy()
            for src, dst in mapping: lbl[raw == src] = dst
            a, b = lbl.flatten().astype(np.int64), pred.flatten().astype(np.int64)
            k = (a >= 0) & (a < n_cls)
            hist += np.bincount(n_cls * a[k] + b[k], minlength=n_cls ** 2).reshape(n_cls, n_cls)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
    return float(np.nanmean(iou)), iou


def udabench_eval(model, imgs, raw_lbls, bs:int, device):
    lut = get_lut('cityscapes', 'cityscapes19').copy()   # a writable copy: torch warns on read-only arrays
    def loader():
        for i in range(0, len(imgs), bs):
            yield {'img': imgs[i:i + bs], 'lbl': remap(torch.from_numpy(raw_lbls[i:i + bs]), lut), 'name': [str(i)]}
    return evaluate(model, loader(), EvalCfg(size=(imgs.shape[-1], imgs.shape[-2]), label_res='full'), device)


def _timed(fn):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='2 images instead of 8')
    p.add_argument('--n', type=int, default=None, help='number of images')
    p.add_argument('--bs', type=int, default=1, help="udabench's evaluation batch size")
    p.add_argument('--threads', type=int, nargs='*', default=None,
                   help='torch thread counts to measure (default: 1 and the current default)')
    p.add_argument('--device', default='cpu', help="udabench's device (the seed-style loop always runs on the CPU)")
    a = p.parse_args(argv)
    n = a.n or (2 if a.quick else 8)
    threads = a.threads or sorted({1, torch.get_num_threads()})
    torch.manual_seed(0)
    model = TinySeg().eval()
    imgs, raw = make_data(n)
    rows, default_threads = [], torch.get_num_threads()
    for th in threads:
        torch.set_num_threads(th)
        udabench_eval(model.to(a.device), imgs[:1], raw[:1], 1, a.device); seed_style_eval(model.cpu(), imgs[:1], raw[:1])  # warm-up
        (ref_miou, _), w_seed, c_seed = _timed(lambda: seed_style_eval(model.cpu(), imgs, raw))
        def run():
            r = udabench_eval(model.to(a.device), imgs, raw, a.bs, a.device)
            if a.device.startswith('cuda'): torch.cuda.synchronize()
            return r
        res, w_uda, c_uda = _timed(run)
        for name, dev, w, c, m in (('seed-style per-image numpy', 'cpu', w_seed, c_seed, ref_miou),
                                   (f'udabench evaluate (bs {a.bs})', a.device, w_uda, c_uda, res['miou'])):
            rows.append(dict(evaluation=name, device=dev, threads=th, images=n, wall_s=round(w, 3), cpu_s=round(c, 3),
                             images_per_s=round(n / w, 3), miou=round(m, 6),
                             speedup=round(w_seed / w, 2)))
        # udabench interpolates only near class boundaries; float near-ties may flip a handful of pixels
        if abs(res['miou'] - ref_miou) > 1e-5: print(f"WARNING: mIoU differs: {res['miou']} vs {ref_miou}")
    torch.set_num_threads(default_threads)
    keys = list(rows[0])
    print(f"evaluation throughput: {n} images, 1024x512 input, 2048x1024 labels, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY')} (speedup = seed-style wall / this wall)")
    print('| ' + ' | '.join(keys) + ' |'); print('|' + '---|' * len(keys))
    for r in rows: print('| ' + ' | '.join(str(r[k]) for k in keys) + ' |')
    for th in threads:
        s, u = [r for r in rows if r['threads'] == th]
        print(f"{th} thread(s): udabench {u['images_per_s']} img/s vs seed-style {s['images_per_s']} img/s -> "
              f"{u['speedup']:.2f}x wall, {s['cpu_s'] / u['cpu_s']:.2f}x CPU time")
    return rows


if __name__ == '__main__':
    main()
