"""Training-step time and peak memory of a udabench model: fp32 eager vs channels_last (fp32), channels_last + bf16 autocast (+ torch.compile).

One step = forward of a source batch and a target batch, cross-entropy on the upsampled source logits plus a
MaxSquare-style term on the target softmax (so both passes are in the backward), backward, SGD step — the shape of
every UDA step in udabench. Each variant runs in its own process, so peak memory is per variant.

    python benchmarks/bench_train_step.py                 # DeepLab-v2 R101; CUDA: 1280x720 + 1024x512, CPU: 320x180 + 256x128
    python benchmarks/bench_train_step.py --quick         # smaller input, fewer steps
    python benchmarks/bench_train_step.py --model small --src 128x64 --trg 128x64 --batch 2   # the embedded benchmark's model
    python benchmarks/bench_train_step.py --methods       # whole DACS / DAFormer / MIC iterations, DeepLab-v2 and MiT-B5

`--methods` times the whole training iteration of the DACS family through udabench's trainer (student, EMA teacher,
ClassMix, the strong augmentation, the feature distance's frozen copy, MIC's masked pass, every optimiser step) for
each published config of `configs/gta52cityscapes/` with its real model (DeepLab-v2 ResNet-101, MiT-B5 + DAFormer head)
at small crops (`--crop`, default 128; the published crop is 512, `benchmarks/bench_gpu.py` times it on a GPU), batch
2 + 2, fp32, on batches of `udabench synth --real-size` images made by each config's own pipeline.

Baseline 'fp32' runs with TF32 disabled (CUDA), so it is true fp32. On CUDA peak memory is
`torch.cuda.max_memory_allocated`; on CPU it is the peak resident set size of the variant's process (includes the
Python/torch baseline, printed below the table). torch.compile is left out on CPU by default: compiling the ResNet-101
forward and backward there takes many minutes (ask for it with --variants). On a machine busy with other work, pass
--threads 1: oversubscribed OpenMP threads make step times erratic.
"""
from __future__ import annotations
import argparse, multiprocessing as mp, platform, resource, statistics, sys, time

VARIANTS = {  # name: (channels_last, bf16 autocast, torch.compile)
    'fp32': (False, False, False),
    'cl': (True, False, False),
    'cl+bf16': (True, True, False),
    'cl+bf16+compile': (True, True, True),
}

def _size(s:str):
    w, h = s.lower().split('x')
    return int(w), int(h)

def _peak_rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != 'darwin' else r / 2**20

def run_variant(variant:str, args:dict) -> dict:
    "Time `args['steps']` training steps of one variant (runs in a fresh process)."
    import torch, torch.nn.functional as F
    from udabench.models.deeplab import ModelCfg
    from udabench.models.checkpoints import build_model
    cl, amp, comp = VARIANTS[variant]
    dev = torch.device(args['device'])
    if args['threads']: torch.set_num_threads(args['threads'])
    if dev.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = False  # a true fp32 baseline; bf16 variants do not use TF32 for convs
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    idle_mb = _peak_rss_mb()
    torch.manual_seed(0)
    cfg = ModelCfg(args['model'], n_cls=19, multi_level=args['multi_level'])
    model = build_model(cfg).to(dev).train()
    opt = torch.optim.SGD(model.param_groups(lr=2.5e-4), momentum=0.9, weight_decay=5e-4)
    (ws, hs), (wt, ht), b = args['src'], args['trg'], args['batch']
    xs, xt = torch.randn(b, 3, hs, ws, device=dev), torch.randn(b, 3, ht, wt, device=dev)
    ys = torch.randint(0, 19, (b, hs, ws), device=dev)
    if cl:
        model = model.to(memory_format=torch.channels_last)
        xs, xt = xs.contiguous(memory_format=torch.channels_last), xt.contiguous(memory_format=torch.channels_last)
    fwd = torch.compile(model) if comp else model

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            o_s, o_t = fwd(xs), fwd(xt)
            up_s = F.interpolate(o_s['logits'], size=(hs, ws), mode='bilinear', align_corners=True)
            up_t = F.interpolate(o_t['logits'], size=(ht, wt), mode='bilinear', align_corners=True)
        p_t = F.softmax(up_t.float(), 1)
        loss = F.cross_entropy(up_s.float(), ys, ignore_index=255) - 0.05 * (p_t ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def sync():
        if dev.type == 'cuda': torch.cuda.synchronize()

    t0 = time.perf_counter()
    for _ in range(args['warmup']): step()
    sync()
    warm_s = time.perf_counter() - t0
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args['steps']):
        t = time.perf_counter(); loss = step(); sync(); times.append(time.perf_counter() - t)
    assert torch.isfinite(loss).item(), f"{variant}: loss is not finite"
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == 'cuda' else _peak_rss_mb()
    return dict(variant=variant, step_ms=1000 * statistics.median(times), min_ms=1000 * min(times),
                warmup_s=warm_s, peak_mb=peak, idle_mb=idle_mb if dev.type == 'cpu' else 0.0)

METHOD_CONFIGS = (('dacs', 'gta52cityscapes/dacs_r101.yaml'), ('daformer', 'gta52cityscapes/daformer_r101.yaml'),
                  ('dacs', 'gta52cityscapes/dacs_mitb5.yaml'), ('daformer', 'gta52cityscapes/daformer_mitb5.yaml'),
                  ('mic', 'gta52cityscapes/mic_mitb5.yaml'))

def method_steps(crop:int, steps:int, warmup:int, threads:int) -> list:
    "Median time of whole DACS-family iterations (`METHOD_CONFIGS`) at `crop`x`crop`, fp32 on the CPU; one dict row per config."
    import tempfile, torch
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_gpu as bg
    if threads: torch.set_num_threads(threads)
    dev, rows = torch.device('cpu'), []
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        data = bg.write_data(work/'data', tiny=True, workers=1)
        for name, rel in METHOD_CONFIGS:
            ratio = crop / 512   # the pseudo-label crop rows and MIC's blocks scale with the crop
            probe = bg.load_cfg(rel, data, work)
            m = probe.method
            ov = [f'data.crop=[{crop}, {crop}]', f'data.trg_crop=[{crop}, {crop}]', 'data.workers=0', 'data.rcs_min_pixels=0',
                  *[f'method.{k}={round(getattr(m, k) * ratio)}' for k in ('pseudo_weight_ignore_top', 'pseudo_weight_ignore_bottom') if getattr(m, k, 0)],
                  *([f'method.mask_block_size={max(1, round(m.mask_block_size * ratio))}'] if getattr(m, 'mask_block_size', 0) else [])]
            cfg = bg.load_cfg(rel, data, work, extra=ov)
            batches = bg.device_batches(cfg, dev, 2, work)
            r = bg.time_variant(cfg, bg.VARIANTS['seed'], dev, batches, work, warmup=warmup, steps=steps)
            rows.append(dict(method=name, config=rel, model=cfg.model.name, crop=crop, **r))
            print(f"{name:<10}{cfg.model.name:<18}{rel:<40}{r['step_ms']:>10.0f}{r['min_ms']:>10.0f}", flush=True)
    return rows

def main(argv=None) -> list:
    "Run the benchmark; prints a table and returns one dict row per variant."
    import torch
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--methods', action='store_true', help='whole DACS / DAFormer / MIC iterations of the published configs (see above)')
    p.add_argument('--crop', type=int, default=128, help='crop side of --methods (default 128)')
    p.add_argument('--model', default='deeplabv2_r101', help='MODELS name (default deeplabv2_r101)')
    p.add_argument('--src', type=_size, default=None, help='source WxH (default 1280x720 on CUDA, 320x180 on CPU)')
    p.add_argument('--trg', type=_size, default=None, help='target WxH (default 1024x512 on CUDA, 256x128 on CPU)')
    p.add_argument('--batch', type=int, default=1, help='images per domain (default 1)')
    p.add_argument('--multi-level', action='store_true', help='also train the auxiliary head')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--steps', type=int, default=None, help='timed steps per variant')
    p.add_argument('--warmup', type=int, default=None, help='untimed steps first (compilation happens here)')
    p.add_argument('--variants', default=None, help=f"comma-separated subset of {','.join(VARIANTS)} "
                   "(default: all on CUDA, without compile on CPU)")
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0 = torch default)')
    p.add_argument('--quick', action='store_true', help='smaller input and fewer steps')
    a = p.parse_args(argv)
    if a.methods:
        steps, warmup = a.steps or (2 if a.quick else 3), a.warmup or 1
        print(f"whole training iterations of the DACS family, batch 2 + 2 at {a.crop}x{a.crop} crops, fp32 on the CPU "
              f"({a.threads or torch.get_num_threads()} threads, torch {torch.__version__}); median of {steps} after {warmup}")
        print(f"{'method':<10}{'model':<18}{'config':<40}{'step ms':>10}{'min ms':>10}")
        rows = method_steps(a.crop, steps, warmup, a.threads)
        base = next(r for r in rows if r['config'].endswith('dacs_r101.yaml'))
        print('ratios to the original DACS iteration (DeepLab-v2 R101): ' +
              ', '.join(f"{r['method']} {r['model']} {r['step_ms'] / base['step_ms']:.2f}x" for r in rows))
        return rows
    cuda = a.device.startswith('cuda')
    if a.src is None: a.src = (1280, 720) if cuda and not a.quick else (160, 90) if a.quick else (320, 180)
    if a.trg is None: a.trg = (1024, 512) if cuda and not a.quick else (128, 64) if a.quick else (256, 128)
    if a.steps is None: a.steps = 20 if cuda else 2 if a.quick else 3
    if a.warmup is None: a.warmup = 5 if cuda else 1
    variants = a.variants.split(',') if a.variants else list(VARIANTS) if cuda else ['fp32', 'cl', 'cl+bf16']
    for v in variants:
        if v not in VARIANTS: p.error(f"unknown variant '{v}'; choose from {', '.join(VARIANTS)}")
    args = dict(model=a.model, src=a.src, trg=a.trg, batch=a.batch, multi_level=a.multi_level, device=a.device,
                steps=a.steps, warmup=a.warmup, threads=a.threads)
    dev_name = torch.cuda.get_device_name(a.device) if cuda else f"{platform.processor() or platform.machine()} CPU, {a.threads or torch.get_num_threads()} threads"
    print(f"{a.model}: source {a.src[0]}x{a.src[1]} + target {a.trg[0]}x{a.trg[1]}, batch {a.batch}+{a.batch}, "
          f"SGD step; {dev_name}; torch {torch.__version__}; {a.warmup} warm-up + {a.steps} timed steps per variant")
    ctx = mp.get_context('spawn')
    rows = []
    for v in variants:
        with ctx.Pool(1) as pool: rows.append(pool.apply(run_variant, (v, args)))
    base = rows[0]
    for r in rows:
        r['speedup'] = base['step_ms'] / r['step_ms']
        r['mem_ratio'] = r['peak_mb'] / base['peak_mb']
        r.update(model=a.model, device=dev_name, src=f"{a.src[0]}x{a.src[1]}", trg=f"{a.trg[0]}x{a.trg[1]}", batch=a.batch)
    mem = 'peak MB (cuda alloc)' if cuda else 'peak RSS MB'
    print(f"{'variant':<17}{'step ms':>10}{'min ms':>10}{'warm-up s':>11}{'speed-up':>10}{mem:>22}{'mem ratio':>11}")
    for r in rows:
        print(f"{r['variant']:<17}{r['step_ms']:>10.1f}{r['min_ms']:>10.1f}{r['warmup_s']:>11.1f}{r['speedup']:>9.2f}x"
              f"{r['peak_mb']:>22.0f}{r['mem_ratio']:>10.2f}x")
    if not cuda: print(f"(CPU peak RSS includes ~{rows[0]['idle_mb']:.0f} MB of Python + torch before the model was built)")
    return rows

if __name__ == '__main__':
    main()
