"""Calibrate the embedded domain shift: source-only and oracle target mIoU of the `udabench bench --quick` setting at
several severities of `udabench synth`.

The real benchmarks the seeds report on keep a recognisable share of the oracle: DeepLab-v2 ResNet-101 trained on GTA5
reaches 36.9 mIoU on Cityscapes (MaxSquare's README) against about 65 for the same network trained on Cityscapes
(the oracle reported by AdaptSegNet and AdvEnt), a ratio of about 0.57. A synthetic shift whose source-only model keeps a
much smaller share leaves self-training nothing to start from; a much larger share leaves nothing to adapt. This script
measures the ratio (and the absolute gap) for each severity with the benchmark's own model, sizes and schedule, so
the default severity of the embedded data can be read off a table instead of guessed. Only source-only and oracle runs
are made: the choice does not look at any adaptation method.

Run: `python benchmarks/calibrate_shift.py [--severities 0.5 0.75 1.0] [--out DIR] [--seed 0] [--jobs 2] [--write FILE]`
(a rerun with the same `--out` reuses the finished runs).
"""
from __future__ import annotations
import argparse, json, tempfile, time
from pathlib import Path

from udabench.data.synthetic import ensure_synthetic
from udabench.bench import Bench, PRESETS

REAL_RATIO = 36.9 / 65.0   # GTA5→Cityscapes source-only / oracle, DeepLab-v2 ResNet-101


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--severities', type=float, nargs='+', default=[0.5, 0.75, 1.0])
    p.add_argument('--out', default=None, help='work folder (default: a temporary one, removed at the end)')
    p.add_argument('--seed', type=int, default=0, help='seed of the data and of the runs')
    p.add_argument('--jobs', type=int, default=2, help='runs trained at the same time')
    p.add_argument('--write', default=None, help='also write the table (markdown) to this file')
    a = p.parse_args(argv)
    q = PRESETS['quick']
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(a.out) if a.out else Path(tmp)
        for s in a.severities:
            t0 = time.perf_counter()
            data = ensure_synthetic(out/f'synth_sev{s:g}', n_src=q.n_src, n_trg_train=q.n_trg, n_trg_heldout=q.n_heldout,
                                    n_trg_val=q.n_test, seed=a.seed, severity=s, workers=a.jobs)
            res = Bench(out/f'bench_sev{s:g}', 'quick', methods=['source_only', 'oracle'], data=str(data), quiet=True,
                        jobs=a.jobs)()
            so, orc = (res['summary'][m]['mean'] for m in ('source_only', 'oracle'))
            rows.append(dict(severity=s, source_only=so, oracle=orc, ratio=so / orc, gap=orc - so,
                             minutes=(time.perf_counter() - t0) / 60))
            print(json.dumps({k: round(v, 3) for k, v in rows[-1].items()}), flush=True)
    lines = [f"Source-only / oracle target mIoU on the embedded shift (`udabench bench --quick` setting, seed {a.seed}), "
             f"by `python benchmarks/calibrate_shift.py`; GTA5→Cityscapes with DeepLab-v2: {REAL_RATIO:.2f}.", '',
             '| severity | source-only mIoU | oracle mIoU | ratio | gap |', '|---|---|---|---|---|']
    lines += [f"| {r['severity']:g} | {r['source_only']:.1f} | {r['oracle']:.1f} | {r['ratio']:.2f} | {r['gap']:.1f} |" for r in rows]
    print('\n' + '\n'.join(lines))
    if a.write: Path(a.write).write_text('\n'.join(lines) + '\n')
    return rows


if __name__ == '__main__': main()
