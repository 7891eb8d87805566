"""Source density-map generation of the depth method: udabench's tensor expression vs the reference's per-pixel loop.

The depth-distribution reference (`gene_sourceDensityMaps.py`) makes, for every SYNTHIA image and every class k, the
class-masked inverse depth, resizes it with PIL's NEAREST to the feature grid, and evaluates the class mixture G_k at
every grid cell in a Python loop that calls a compiled function (`getDensity_*.so::Add1`) through ctypes, cell by cell.
Here the same loop (`udabench.methods.depth_density.reference_source_density`) calls
* a C function of the same kind, compiled with the system's C compiler and called through ctypes (the reference's
  setting; skipped when no compiler is found), and
* a pure-Python mixture (the loop without any compiled help),
against `source_density_maps`, which evaluates whole batches as tensor expressions (float64). All use the same labels,
inverse depth and class GMMs (fitted on the data with `fit_gmms_from_dataset`), and the maps are checked to agree.

Data: the embedded synthetic source (a SYNTHIA tree: 16-bit labels, 16-bit depth in cm), 100 images at 256x144 on the
18x32 grid of the embedded model, 16 classes; plus one real-size row: a 1280x760 SYNTHIA-like image on the reference's
96x161 grid. The loops are slow, so they are timed on a subset (`--loop-images` images; for the real size a subset of
the classes) and **extrapolated per image**; udabench is timed on everything. One torch thread (the loop is single
threaded); udabench runs batches of 50 images and is timed as the best of 4 runs. Run:
`python benchmarks/bench_density.py [--quick] [--n N] [--loop-images K]`.
"""
from __future__ import annotations
import argparse, ctypes, os, shutil, subprocess, tempfile, time
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
from pathlib import Path
import numpy as np
import torch

from udabench.data.synthetic import ensure_synthetic
from udabench.data.datasets import Synthia
from udabench.methods.depth_density import (ClassGMM, fit_gmms_from_dataset, source_density_maps, reference_source_density,
                                            _params)

C_SRC = r"""
#include <math.h>
static const double *MU, *VAR, *PI; static int M;
void set_params(const double *mu, const double *var, const double *pi, int m) { MU = mu; VAR = var; PI = pi; M = m; }
double density(int k, double x, double y, double d) {       /* G_k(x, y, d): product of three 1-D normal pdfs */
    const double c = 0.3989422804014327; double g = 0.0;
    for (int j = 0; j < M; j++) {
        const double *mu = MU + (k * M + j) * 3, *v = VAR + (k * M + j) * 3;
        double dx = x - mu[0], dy = y - mu[1], dd = d - mu[2];
        g += PI[k * M + j] * c / sqrt(v[0]) * exp(-dx * dx / (2 * v[0])) * c / sqrt(v[1]) * exp(-dy * dy / (2 * v[1]))
             * c / sqrt(v[2]) * exp(-dd * dd / (2 * v[2]));
    }
    return g;
}
"""

def compiled_density(gmm, workdir:Path):
    "A ctypes `density(k, x, y, d)` of `gmm` from C compiled with cc/gcc, or None without a compiler."
    cc = shutil.which('cc') or shutil.which('gcc')
    if cc is None: return None, None
    src, lib = workdir/'density.c', workdir/'density.so'
    src.write_text(C_SRC)
    try: subprocess.run([cc, '-O2', '-shared', '-fPIC', str(src), '-o', str(lib), '-lm'], check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError): return None, None
    so = ctypes.CDLL(str(lib))
    so.density.argtypes, so.density.restype = [ctypes.c_int, ctypes.c_double, ctypes.c_double, ctypes.c_double], ctypes.c_double
    arrs = [np.ascontiguousarray(t.numpy(), dtype=np.float64) for t in _params(gmm)]   # kept alive with the closure
    ptr = lambda a: a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
    so.set_params(ptr(arrs[0]), ptr(arrs[1]), ptr(arrs[2]), ctypes.c_int(gmm.n_components))
    so._keep = arrs
    return so.density, cc

def _timed(fn):
    t, c = time.perf_counter(), time.process_time()
    r = fn()
    return r, time.perf_counter() - t, time.process_time() - c

def row(setting, method, timed, wall, cpu, extrapolated, ref_cpu) -> dict:
    return dict(setting=setting, method=method, images_timed=timed, wall_s_per_image=wall, cpu_s_per_image=cpu,
                extrapolated=extrapolated, speedup=cpu / ref_cpu)

def synthia_like(gmm, hw=(760, 1280), seed=0):
    "A 1280x760 label map (bands of the 16 classes) and an inverse-depth map of SYNTHIA's range."
    rng = np.random.default_rng(seed)
    H, W = hw
    lbl = np.repeat(rng.integers(0, gmm.n_cls, (19, 32)), H // 19, 0).repeat(W // 32, 1)[:H, :W]
    raw = rng.integers(200, 6000, (H, W)).astype(np.float64)
    return torch.from_numpy(lbl), torch.from_numpy(65536 / (raw + 1)).float()

def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='20 images, 1 loop image')
    p.add_argument('--n', type=int, default=None, help='embedded images (default 100)')
    p.add_argument('--loop-images', type=int, default=None, help='images the loops are timed on (default 3)')
    p.add_argument('--size', type=int, default=256, help='embedded image width (source 16:9)')
    a = p.parse_args(argv)
    n = a.n or (20 if a.quick else 100)
    k_loop = a.loop_images or (1 if a.quick else 3)
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = ensure_synthetic(tmp/'synth', n_src=n, n_trg_train=0, n_trg_heldout=0, n_trg_val=1, size=a.size)
        ds = Synthia(root/'synthia', 'train', depth=True)
        H, W = ds[0]['img'].shape[-2:]
        grid = (-(-H // 8), -(-W // 8))                                   # the embedded model's stride-8 grid
        gmm, t_fit, _ = _timed(lambda: fit_gmms_from_dataset(ds, grid, seed=0))
        samples = [ds[i] for i in range(n)]
        lbl = torch.stack([s['lbl'].as_subclass(torch.Tensor) for s in samples])
        dep = torch.stack([s['depth'].as_subclass(torch.Tensor) for s in samples])
        dens_c, cc = compiled_density(gmm, tmp)
        # udabench: every image, in batches of 50 (a warm-up first)
        run_all = lambda: torch.cat([source_density_maps(gmm, lbl[i:i + 50], dep[i:i + 50], grid) for i in range(0, n, 50)])
        maps, w_u, c_u = min((_timed(run_all) for _ in range(4)), key=lambda r: r[2])    # best of 4 (the first warms up)
        setting = f'embedded {W}x{H}, grid {grid[0]}x{grid[1]}, 16 cls'
        rows.append(row(setting, 'udabench source_density_maps', n, w_u / n, c_u / n, False, c_u / n))
        loops = [('reference loop + ctypes C per cell', dens_c)] if dens_c is not None else []
        loops.append(('reference loop + pure-Python per cell', None))
        for name, fn in loops:
            outs, w_l, c_l = _timed(lambda: [reference_source_density(gmm, lbl[i].numpy(), dep[i, 0].numpy(), grid, fn) for i in range(k_loop)])
            for i, o in enumerate(outs):
                err = np.abs(o - maps[i].numpy()).max() / max(o.max(), 1e-300)
                if err > 1e-9: print(f'WARNING: {name}: image {i} differs from udabench by {err:.2e} (relative to the max)')
            rows.append(row(setting, name, k_loop, w_l / k_loop, c_l / k_loop, True, c_u / n))
        # the reference's size: one 1280x760 image on the 96x161 grid, the loops on 2 of the 16 classes
        big = ClassGMM(gmm.mu, gmm.var, gmm.pi)
        bl, bd = synthia_like(big)
        g_big = (96, 161)
        m_big, w_ub, c_ub = min((_timed(lambda: source_density_maps(big, bl[None], bd[None], g_big)) for _ in range(4)), key=lambda r: r[2])
        real = 'SYNTHIA size 1280x760, grid 96x161, 16 cls'
        rows.append(row(real, 'udabench source_density_maps', 1, w_ub, c_ub, False, c_ub))
        sub = 2
        two = ClassGMM(big.mu[:sub], big.var[:sub], big.pi[:sub])
        (tmp/'real').mkdir()
        dens_c2 = compiled_density(two, tmp/'real')[0] if dens_c is not None else None   # a second library: another path
        for name, fn in ([('reference loop + ctypes C per cell', dens_c2)] if dens_c2 is not None else []) + [('reference loop + pure-Python per cell', None)]:
            o, w_l, c_l = _timed(lambda: reference_source_density(two, bl.numpy(), bd.numpy(), g_big, fn))
            err = np.abs(o - m_big[0, :sub].numpy()).max() / max(o.max(), 1e-300)
            if err > 1e-9: print(f'WARNING: {name}: real-size map differs from udabench by {err:.2e}')
            rows.append(row(real, name, f'{sub}/16 classes', w_l * big.n_cls / sub, c_l * big.n_cls / sub, True, c_ub))
    print(f"source density maps: {n} embedded images (GMM fit {t_fit:.1f} s, not timed below), one torch thread, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, C compiler: {cc or 'none (ctypes rows skipped)'}")
    print("loop rows are timed on a subset and extrapolated per image (extrapolated = True). Everything runs on one thread, so the\n"
          "speedup is the ratio of CPU seconds per image (process time), which a machine shared with other jobs does not inflate;\n"
          "wall seconds are shown too")
    keys = list(rows[0])
    print('| ' + ' | '.join(keys) + ' |'); print('|' + '---|' * len(keys))
    for r in rows:
        print('| ' + ' | '.join(f'{r[k]:.3g}' if isinstance(r[k], float) else str(r[k]) for k in keys) + ' |')
    for r in rows:
        if r['method'] != 'udabench source_density_maps':
            print(f"{r['setting']}: udabench is {r['speedup']:.0f}x faster than the {r['method']} "
                  f"({r['cpu_s_per_image'] * 1e3:.1f} ms vs {r['cpu_s_per_image'] / r['speedup'] * 1e3:.3f} ms of CPU per image)")
    return rows

if __name__ == '__main__': main()
