"""What makes two runs of the embedded benchmark differ: the process, the thread count or the CPU kernels.

`udabench bench` seeds everything and trains on the CPU, so its table should repeat to the digit on one machine. This
script trains the same short source-only run of the bench (its data, model and schedule, fewer iterations) in fresh
processes under different conditions and prints, for each, a hash of the final weights, the largest weight difference
from the first run and the target mIoU:

* `repeat`: the same settings in another process (what two `udabench bench` runs on one machine do);
* `threads2`: two intra-op threads instead of the bench's one (parallel reductions add in another order);
* `isa_default`: `ATEN_CPU_CAPABILITY=default`, PyTorch's non-vectorised kernels instead of the machine's SIMD ones
  (AVX2 here). A machine with other SIMD units (AVX-512, Arm) picks other kernels in the same way, so this stands in
  for "another kind of machine" on one machine.

Run: `python benchmarks/reproducibility.py [--iters 200] [--data DIR]` (each run takes well under a minute on one core).
"""
from __future__ import annotations
import argparse, hashlib, json, os, subprocess, sys, tempfile
from pathlib import Path

VARIANTS = {'reference': {}, 'repeat': {}, 'threads2': {'OMP_NUM_THREADS': '2'},   # torch takes its thread count from it
            'isa_default': {'ATEN_CPU_CAPABILITY': 'default'}}


def child(iters:int, data:str, out:str):
    "One run (in this process): train, then print a JSON line with the weights' hash, the weights file and the mIoU."
    import torch
    from udabench.bench import PRESETS, embedded_config
    from udabench.experiments import run_experiment, register_methods
    register_methods()
    p = PRESETS['quick']
    cfg = embedded_config('source_only', data or p.data(), 0, p, out=out, iters=iters)
    cfg.train.progress, cfg.train.eval_every, cfg.train.ckpt_every = False, 0, iters
    run = Path(out)/'run'
    res = run_experiment(cfg, run_dir=run, quiet=True)
    sd = torch.load(run/'last.pth', weights_only=True)
    w = {k: v for k, v in sd['method'].items() if k.startswith('model.')}
    h = hashlib.sha256()
    for k in sorted(w): h.update(k.encode()); h.update(w[k].contiguous().numpy().tobytes())
    torch.save(w, Path(out)/'weights.pt')
    print(json.dumps(dict(sha=h.hexdigest()[:16], miou=100 * res['last']['miou'], capability=torch.backends.cpu.get_cpu_capability(),
                          threads=torch.get_num_threads(), weights=str(Path(out)/'weights.pt'))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--iters', type=int, default=200)
    ap.add_argument('--data', help='a `udabench synth` folder (default: the quick preset data)')
    ap.add_argument('--child', help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child: return child(a.iters, a.data, a.child)
    import torch
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, env in VARIANTS.items():
            out = Path(tmp)/name; out.mkdir()
            e = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONWARNINGS': 'ignore', **env}
            cmd = [sys.executable, __file__, '--iters', str(a.iters), '--child', str(out)] + (['--data', a.data] if a.data else [])
            r = subprocess.run(cmd, env=e, capture_output=True, text=True)
            if r.returncode: sys.exit(f"{name} failed:\n{r.stderr[-3000:]}")
            rows[name] = json.loads(r.stdout.strip().splitlines()[-1])
        ref = torch.load(rows['reference']['weights'], weights_only=True)
        print(f"source-only, {a.iters} iterations of the quick preset, one process per run\n")
        print('| run | CPU kernels | threads | weights sha256 | max abs weight difference from `reference` | target mIoU (%) |')
        print('|---|---|---|---|---|---|')
        for name, r in rows.items():
            w = torch.load(r['weights'], weights_only=True)
            d = max(float((w[k].double() - ref[k].double()).abs().max()) for k in ref if ref[k].is_floating_point())
            print(f"| {name} | {r['capability']} | {r['threads']} | {r['sha']} | {d:.3g} | {r['miou']:.4f} |")


if __name__ == '__main__':
    main()
