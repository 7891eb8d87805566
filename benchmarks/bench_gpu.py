"""GPU training step of every model family of the seeds' configs, run whole through udabench's trainer: step time, images/s, peak memory and model FLOP utilisation per precision, memory layout, compiler and optimiser; the data pipeline, evaluation and pseudo-label rates at real size; the bf16 loss trajectory beside fp32.

Families and their methods, each from its config in `configs/` (only the roots, the pretrained-weight path and the
options named in `CONFIGS` are overridden): DeepLab-v2 ResNet-101 (Caffe) with the 2-branch ASPP — IW-MaxSquare +
multi-level guidance, OCE, SIM; with the 4-branch ASPP — the depth method (depth and density heads, density targets,
discriminator), AdvEnt; SDCA's torchvision ResNet-101 (distribution estimators); VGG-16 (OCE); mmseg's dlv2red
ResNet-101-V1c (DAFormer's strategies on DeepLab-v2); MiT-B5 with the DAFormer head (DAFormer, MIC). One training iteration
is `Trainer.train_iter` plus the method's `after_step`: the forward passes, every loss term of the method, its
discriminator update, estimators and memory banks, backward and every optimiser and scheduler step. Batches come from
the config's own data pipeline on a `udabench synth --real-size` folder (GTA5 1914x1052, SYNTHIA 1280x760, Cityscapes
2048x1024), at the config's batch and sizes, and are held on the device, so that the step time is the device's.

Variants, each on a freshly built model with the same seed (cudnn.benchmark on in all):
  seed             fp32 with TF32 off, eager, contiguous tensors, for-loop optimisers: the seeds' way (1.0x)
  tf32             + TF32 matmuls and convolutions
  bf16             bf16 autocast (`train.amp: bf16`), TF32 for what stays fp32
  bf16+cl          + channels_last (`train.channels_last`)
  bf16+cl+compile  + torch.compile of the model (`train.compile`)
  bf16+cl+foreach  bf16+cl with foreach optimisers (what the trainer's optimisers do by default on CUDA)
  bf16+cl+fused    bf16+cl with fused optimisers
  bf16+cl+ddp      bf16+cl with the model and discriminators in DistributedDataParallel, one process (NCCL)
Foreach and fused optimisers come from `train.optim_impl` where the trainer has that option, else they are rebuilt
here from the trainer's own (the for-loop ones always are). Each family's first config gets every variant (DDP: the
first family only), the others `seed` and `bf16+cl`; `--budget-s` drops what would not fit, the most telling
measurements first (see `main`). Step time is the median of
`--steps` (>= 20 on a GPU) after `--warmup` iterations; model FLOPs per iteration are counted once per config with
`torch.utils.flop_counter` on an fp32 iteration, and MFU is against the device's dense bf16 peak (`BF16_PEAK_TFLOPS`).

    python benchmarks/bench_gpu.py                        # CUDA; writes the real-size data into a temp folder
    python benchmarks/bench_gpu.py --data DIR --budget-s 200 --out DIR
    python benchmarks/bench_gpu.py --tiny                 # CPU check of the whole script: tiny sizes and models, seconds
"""
from __future__ import annotations
import argparse, contextlib, copy, gc, inspect, itertools, json, os, platform, shutil, socket, statistics, sys, tempfile, time
from dataclasses import dataclass, fields, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT/'configs'

# Dense (no 2:4 sparsity) BF16 tensor-core peaks in TFLOPS, matched against `torch.cuda.get_device_name` in this order.
# From NVIDIA's product datasheets, which quote BF16 with sparsity (dense is half): H100 SXM 1,979 -> 989.5,
# H100 NVL 1,671 -> 835.5, H100 PCIe 1,513 -> 756.5, H200 SXM 1,979 -> 989.5, H200 NVL 1,671 -> 835.5,
# GH200 1,979 -> 989.5; A100 312 dense (624 with sparsity). An unknown device gets no MFU.
BF16_PEAK_TFLOPS = (('GH200', 989.5), ('H200 NVL', 835.5), ('H200', 989.5), ('H100 NVL', 835.5), ('H100 PCIe', 756.5),
                    ('H100', 989.5), ('A100', 312.0))

def bf16_peak(name:str):
    "The dense bf16 peak (TFLOPS) of the device called `name`, or None when it is not in `BF16_PEAK_TFLOPS`."
    return next((v for k, v in BF16_PEAK_TFLOPS if k in name), None)

# (family, title, configs): the first config of a family gets the full set of variants. Per config: a name, the file
# under configs/, and overrides besides the roots and `model.init=null` (no pretrained weights are needed to time a step).
CONFIGS = (
    ('r101_2branch', 'DeepLab-v2 R101 (Caffe), 2-branch ASPP', (
        ('iw_maxsquare_multi', 'gta52cityscapes/iw_maxsquare_multi_r101.yaml', ()),
        ('oce', 'gta52cityscapes/oce_r101.yaml', ('data.src_args={}',)),      # its GTA5 list file names UDAclustering's images
        # the banks are matched from the first iteration (warm-ups 0): the steady state of a long run, not its first 500 steps
        ('sim', 'sim_gta5_r101.yaml', ('method.stuff_warmup=0', 'method.thing_warmup=0')),
        # the original DACS (frozen BatchNorm, 2 + 2 crops of 512)
        ('dacs', 'gta52cityscapes/dacs_r101.yaml', ()),)),
    # DAFormer's strategies on the DAFormer family's DeepLab-v2 (mmseg's dlv2red: RCS, the feature distance's frozen
    # copy, trainable BatchNorm, AdamW, 2 + 2 crops of 512)
    ('dlv2red', 'DeepLab-v2 R101-V1c (mmseg dlv2red, DAFormer family)', (
        ('daformer_r101', 'gta52cityscapes/daformer_r101.yaml', ()),)),
    ('r101_4branch', 'DeepLab-v2 R101 (Caffe), 4-branch ASPP', (
        ('depth_distribution', 'synthia2cityscapes/depth_distribution_r101.yaml', ('method.density_dir=""',)),  # GMMs: fitted below
        ('advent', 'gta52cityscapes/advent_r101.yaml', ()))),
    # SDCA's config batch 4 + 4 is 4 GPUs x (1 + 1): one GPU runs its share (--global-batch for 4 + 4 on one device)
    ('r101_tv', 'DeepLab-v2 R101 (torchvision, SDCA)', (('sdca', 'sdca_gta5_r101.yaml', ()),)),
    ('vgg16', 'DeepLab-v2 VGG-16', (('oce_vgg16', 'gta52cityscapes/oce_vgg16.yaml', ('data.src_args={}',)),)),
    # DAFormer and MIC(DAFormer) at the published 512x512 crops, batch 2 + 2: student, EMA teacher, ImageNet copy
    ('mit_b5', 'MiT-B5 + DAFormer head (DAFormer, MIC)', (
        ('daformer', 'gta52cityscapes/daformer_mitb5.yaml', ()),
        ('mic', 'gta52cityscapes/mic_mitb5.yaml', ()))),
)
# --tiny: the family's own model class, made small (the Caffe ResNet at width 8 with one block per stage, torchvision's
# ResNet-50, the ResNet-50-V1c for dlv2red, VGG-16 as it is) and every configured image size divided by 16
TINY_MODEL = {'r101_2branch': ('model.width=8', 'model.kwargs={layers: [1, 1, 1, 1]}'),
              'r101_4branch': ('model.width=8', 'model.kwargs={layers: [1, 1, 1, 1]}'),
              'r101_tv': ('model.kwargs={arch: resnet50}',), 'dlv2red': ('model.kwargs={arch: resnet50}',), 'vgg16': (), 'mit_b5': ('model.name=mit_tiny_daformer',)}
TINY_DIV = 16

@dataclass(frozen=True)
class Variant:
    name:str; tf32:bool; amp:str; cl:bool; compile:bool; optim:str; ddp:bool = False

VARIANTS = {v.name: v for v in (
    Variant('seed', False, 'none', False, False, 'for-loop'),
    Variant('tf32', True, 'none', False, False, 'for-loop'),
    Variant('bf16', True, 'bf16', False, False, 'for-loop'),
    Variant('bf16+cl', True, 'bf16', True, False, 'for-loop'),
    Variant('bf16+cl+compile', True, 'bf16', True, True, 'for-loop'),
    Variant('bf16+cl+foreach', True, 'bf16', True, False, 'foreach'),
    Variant('bf16+cl+fused', True, 'bf16', True, False, 'fused'),
    Variant('bf16+cl+ddp', True, 'bf16', True, False, 'for-loop', ddp=True),
)}
SECONDARY = ('seed', 'bf16+cl')

# --------------------------------------------------------------------------------------------------------------------

class Clock:
    "The time budget: `left()` seconds; items that would not fit are recorded as skipped."
    def __init__(self, budget:float): self.t0, self.budget, self.skipped, self.failed = time.perf_counter(), budget, [], []
    def elapsed(self) -> float: return time.perf_counter() - self.t0
    def left(self) -> float: return self.budget - self.elapsed() if self.budget > 0 else float('inf')
    def allow(self, what:str, need:float) -> bool:
        if self.left() >= need: return True
        self.skipped.append(f"{what} (needs about {need:.0f} s by the steps timed so far, {max(self.left(), 0):.0f} s of the budget left)")
        return False

def _sync(dev):
    import torch
    if dev.type == 'cuda': torch.cuda.synchronize(dev)

def _set_tf32(on:bool):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on

def _free(dev):
    import torch
    gc.collect()
    if dev.type == 'cuda': torch.cuda.empty_cache()

def _free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def tiny_overrides(cfg, family:str) -> list:
    "Overrides making config `cfg` tiny: the family's small model, every image size divided by `TINY_DIV`, one worker."
    d = cfg.data
    sz = lambda s: f"[{max(16, round(s[0] / TINY_DIV))}, {max(16, round(s[1] / TINY_DIV))}]"
    ov = [f'data.src_size={sz(d.src_size)}', f'data.trg_size={sz(d.trg_size)}', f'data.eval_size={sz(d.eval_size)}',
          f'eval.size={sz(d.eval_size)}', 'data.workers=1']
    ov += [f'data.{k}={sz(getattr(d, k))}' for k in ('crop', 'trg_crop') if getattr(d, k)]
    if d.rcs: ov.append('data.rcs_min_pixels=0')   # two tiny source images: not every class reaches the published threshold
    if getattr(cfg.method, 'mask_block_size', 0): ov.append('method.mask_block_size=4')
    ov += [f'method.{k}={round(getattr(cfg.method, k) / TINY_DIV)}' for k in ('pseudo_weight_ignore_top', 'pseudo_weight_ignore_bottom')
           if getattr(cfg.method, k, 0)]
    return ov + list(TINY_MODEL[family])

def load_cfg(rel:str, data_root:Path, work:Path, extra=(), family:str=None, tiny:bool=False, global_batch:bool=False):
    "The experiment config of `configs/<rel>` on the real-size folder `data_root` (roots, init and `extra` overridden)."
    from udabench.experiments import load_experiment
    import yaml
    src = (yaml.safe_load((CONFIG_DIR/rel).read_text()).get('data') or {}).get('src', 'gta5')
    ov = [f"data.src_root={data_root/('synthia' if src == 'synthia' else 'gta5')}", f"data.trg_root={data_root/'cityscapes'}",
          'model.init=null', f"data.stats_dir={work/'class_stats'}", f"out={work/'runs'}", *extra]
    cfg = load_experiment(CONFIG_DIR/rel, ov)
    if rel.startswith('sdca') and not global_batch: cfg = replace(cfg, data=replace(cfg.data, bs_src=1, bs_trg=1))
    if tiny: cfg = load_experiment(CONFIG_DIR/rel, ov + tiny_overrides(cfg, family) + (['data.bs_src=1', 'data.bs_trg=1'] if rel.startswith('sdca') else []))
    return cfg

class Cycle:
    "An endless iterator over a fixed list of batches (held on the device)."
    def __init__(self, batches): self.batches = batches
    def __iter__(self): return itertools.cycle(self.batches)

def device_batches(cfg, dev, n:int, work:Path) -> list:
    "`n` training batches of `cfg` from its own pipeline (transforms, sampling), moved to `dev`."
    import torch
    from udabench.data.loaders import build_datasets, paired_loader
    dl = paired_loader(replace(cfg.data, workers=0), cfg.seed, build_datasets(cfg.data), run_dir=work)
    out = []
    for b in itertools.islice(iter(dl), n):
        out.append({k: v.to(dev, non_blocking=True) if torch.is_tensor(v) else v for k, v in b.items()})
    return out

def prepare(name:str, cfg, dev, batches, work:Path):
    "What a method needs before its first iteration, computed once per config: the depth method's class GMMs, SDCA's distributions."
    import torch
    from udabench.core import apply_overrides
    if name == 'depth_distribution':
        from udabench.data.loaders import build_datasets
        from udabench.methods.depth_density import fit_gmms_from_dataset
        from udabench.models.checkpoints import build_model
        with torch.device('meta'):
            m = build_model(replace(cfg.model, init=None))
            grid = tuple(m(torch.empty(1, 3, cfg.data.src_size[1], cfg.data.src_size[0]))['logits'].shape[-2:])
        g = fit_gmms_from_dataset(build_datasets(cfg.data)['src'], grid, cfg.method.n_components, max_points=20_000, max_images=4)
        f = work/f'{name}_gmm.json'; g.save(f)
        return apply_overrides(cfg, [f'method.gmm_file={f}'])
    if name == 'sdca':
        from udabench.experiments import build_method
        from udabench.methods.sdca import init_distribution
        d = work/'sdca_dist'
        with torch.device(dev): m = build_method(cfg, dev)
        init_distribution(m.model, batches, d, device=dev)
        del m; _free(dev)
        return apply_overrides(cfg, [f'method.dist_dir={d}'])
    return cfg

def set_optimizers(tr, kind:str):
    "Rebuild the trainer's optimisers (same groups and settings) as for-loop, foreach or fused ones, with their schedules."
    import torch
    extra = {'for-loop': dict(foreach=False, fused=None), 'foreach': dict(foreach=True, fused=None),
             'fused': dict(foreach=False, fused=True)}[kind]
    for k, o in list(tr.opts.items()):
        groups = [{**g, **extra} for g in o.param_groups]   # the groups carry every option: they win over the defaults
        known = inspect.signature(type(o).__init__).parameters   # (AdamW's defaults hold Adam's `decoupled_weight_decay`, not its argument)
        tr.opts[k] = type(o)(groups, **{n: v for n, v in {**o.defaults, **extra}.items() if n in known})
        tr.scheds[k] = torch.optim.lr_scheduler.LambdaLR(tr.opts[k], list(tr.scheds[k].lr_lambdas))   # the trainer's schedule

def iteration(tr) -> dict:
    "One whole training iteration: the trainer's step and the method's `after_step` hook."
    logs = tr.train_iter(); tr.method.after_step(tr, logs)
    return logs

@contextlib.contextmanager
def ddp_group(dev):
    "A one-process default group (NCCL on CUDA, gloo on the CPU) for the DDP variant."
    import torch.distributed as dist
    os.environ.setdefault('MASTER_ADDR', '127.0.0.1'); os.environ['MASTER_PORT'] = str(_free_port())
    dist.init_process_group('nccl' if dev.type == 'cuda' else 'gloo', rank=0, world_size=1)
    try: yield
    finally: dist.destroy_process_group()

def build_trainer(cfg, v:Variant, dev, batches, work:Path):
    "A trainer for variant `v` of `cfg` on a freshly built method (seed `cfg.seed`), optimisers rebuilt as `v` says."
    import torch
    from udabench.experiments import build_method
    from udabench.train.core import Trainer
    from udabench.train.distributed import wrap_distributed
    _set_tf32(v.tf32)
    torch.manual_seed(cfg.seed)
    with torch.device(dev): method = build_method(cfg, dev)
    if v.ddp:
        if v.cl: method.to(memory_format=torch.channels_last)   # before wrapping: DDP's buckets follow the parameters' layout
        method = wrap_distributed(method, dev)
    tcfg = replace(cfg.train, amp=v.amp, channels_last=v.cl, compile=v.compile, progress=False, tensorboard=False)
    own = v.optim != 'for-loop' and 'optim_impl' in {f.name for f in fields(tcfg)}   # the trainer's own option, where it has one
    if own: tcfg = replace(tcfg, optim_impl=v.optim)
    tr = Trainer(method, Cycle(batches), tcfg, dev, run_dir=work/'runs'/f'{cfg.name}_{v.name}')
    if not own: set_optimizers(tr, v.optim)
    method.before_fit(tr)
    return tr

def time_variant(cfg, v:Variant, dev, batches, work:Path, warmup:int, steps:int, count_flops:bool=False) -> dict:
    "Median step time, images/s, peak memory (and, with `count_flops`, FLOPs of one iteration) of variant `v`."
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    ctx = ddp_group(dev) if v.ddp else contextlib.nullcontext()
    with ctx:
        tr = build_trainer(cfg, v, dev, batches, work)
        t = time.perf_counter()
        for _ in range(warmup): iteration(tr)
        _sync(dev); warm_s = time.perf_counter() - t
        flops = None
        if count_flops:
            with FlopCounterMode(display=False) as fc: iteration(tr)
            flops = fc.get_total_flops()
        if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats(dev)
        times = []
        for _ in range(steps):
            t = time.perf_counter(); logs = iteration(tr); _sync(dev); times.append(time.perf_counter() - t)
        peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == 'cuda' else None
        bad = [k for k, x in logs.items() if isinstance(x, float) and x != x]
        del tr
    if v.compile: torch._dynamo.reset()
    _free(dev)
    if bad: raise RuntimeError(f"{cfg.name} {v.name}: non-finite logs {bad}")
    return dict(step_ms=1000 * statistics.median(times), min_ms=1000 * min(times), warmup_s=warm_s, peak_gib=peak, flops=flops)

# --------------------------------------------------------------------------------------------------------------------

def data_rate(cfg, work:Path, n:int, workers:int) -> dict:
    "Images/s of the config's training pipeline (both domains, its workers) at real size, after the first batch."
    from udabench.data.loaders import build_datasets, paired_loader
    dl = paired_loader(replace(cfg.data, workers=workers), cfg.seed, build_datasets(cfg.data), run_dir=work)
    it = iter(dl); next(it)
    t = time.perf_counter()
    for _ in range(n): next(it)
    dt = time.perf_counter() - t
    per = cfg.data.bs_src + cfg.data.bs_trg
    return dict(workers=workers, batches=n, images_per_s=n * per / dt)

def eval_rate(cfg, dev, work:Path, workers:int, amp:bool) -> dict:
    "Images/s of `udabench.evaluate` on the target val split with the config's protocol (labels at full resolution)."
    import torch
    from udabench.data.loaders import build_datasets, eval_loader
    from udabench.evaluate import evaluate
    from udabench.models.checkpoints import build_model
    _set_tf32(True)
    torch.manual_seed(0)
    with torch.device(dev): model = build_model(replace(cfg.model, init=None))
    ds = build_datasets(cfg.data)
    ecfg = replace(cfg.eval, amp=amp)
    evaluate(model, eval_loader(cfg.data, 'val', ds, bs=1, workers=workers), ecfg, dev)   # warm-up (cudnn, workers)
    t = time.perf_counter()
    res = evaluate(model, eval_loader(cfg.data, 'val', ds, bs=1, workers=workers), ecfg, dev)
    _sync(dev); dt = time.perf_counter() - t
    lbl = tuple(ds['val'][0]['lbl'].shape)
    del model; _free(dev)
    return dict(images=res['n_images'], images_per_s=res['n_images'] / dt, input=f"{ecfg.size[0]}x{ecfg.size[1]}",
                labels=f"{lbl[1]}x{lbl[0]}", label_res=ecfg.label_res, flip=ecfg.flip, amp='bf16' if amp else 'fp32')

def pseudo_rate(cfg, dev, work:Path, workers:int) -> dict:
    "Images/s of `generate_pseudo_labels` (median rule, two passes, full-resolution labels) on the target training folder."
    import torch
    from udabench.models.checkpoints import build_model
    from udabench.train.pseudo_labels import generate_pseudo_labels, pseudo_label_loader
    _set_tf32(True)
    torch.manual_seed(0)
    with torch.device(dev): model = build_model(replace(cfg.model, init=None))
    out = work/'pseudo_labels'
    if out.exists(): shutil.rmtree(out)
    dl = pseudo_label_loader(cfg, 'train', gt=True, bs=1, workers=workers)
    t = time.perf_counter()
    res = generate_pseudo_labels(model, dl, out, rule='median', full_res=True, device=dev)
    _sync(dev); dt = time.perf_counter() - t
    n = len(list(out.rglob('*.png')))
    del model; _free(dev)
    return dict(images=n, seconds=dt, images_per_s=n / dt, miou=res.get('miou'))

def loss_trajectory(cfg, dev, batches, work:Path, steps:int) -> dict:
    "The total loss of `steps` iterations in fp32 and in bf16 autocast (TF32 off in both) from the same init and batches."
    out = {}
    for name, amp in (('fp32', 'none'), ('bf16', 'bf16')):
        tr = build_trainer(cfg, Variant(name, False, amp, False, False, 'for-loop'), dev, batches, work)
        out[name] = [iteration(tr)['total'] for _ in range(steps)]
        del tr; _free(dev)
    return out

# --------------------------------------------------------------------------------------------------------------------

def md_table(head:list, rows:list) -> str:
    return '\n'.join(['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)] + ['| ' + ' | '.join(map(str, r)) + ' |' for r in rows])

def _f(x, fmt='.1f', none='–'):
    return none if x is None else format(x, fmt)

def write_data(root:Path, tiny:bool, workers:int) -> Path:
    "A `udabench synth --real-size` folder (a few dozen images; 2 + 2 + 1 with --tiny)."
    from udabench.data.synthetic import generate
    n = dict(n_src=2, n_trg_train=2, n_trg_heldout=0, n_trg_val=1) if tiny else dict(n_src=12, n_trg_train=12, n_trg_heldout=0, n_trg_val=6)
    return generate(root, real_size=True, workers=workers, **n)

def render(head:str, rows:list, skipped:list, order:list) -> str:
    "The markdown report of the rows measured so far."
    L = [head, '']
    titles = {f: t for f, t, _ in CONFIGS}
    steps = sorted((r for r in rows if r['table'] == 'step'), key=lambda r: (order.index(r['config']), list(VARIANTS).index(r['variant'])))
    if steps:
        L += ['## Training iteration', '', md_table(
            ['family', 'config', 'batch', 'source / target size', 'variant', 'optimiser', 'step ms', 'images/s', 'speed-up',
             'peak GiB', 'TFLOP / iter', 'MFU %', 'warm-up s'],
            [[titles[r['family']] if i == 0 or steps[i - 1]['family'] != r['family'] else '', r['config'], r['batch'], r['sizes'],
              r['variant'], r['optimiser'], _f(r['step_ms']), _f(r['images_per_s'], '.2f'),
              _f(r['speedup'], '.2f') + ('x' if r['speedup'] else ''), _f(r['peak_gib'], '.2f'), _f(r['tflop_per_iter'], '.3g'),
              _f(r['mfu_pct']), _f(r['warmup_s'])] for i, r in enumerate(steps)]), '']
    dr = [r for r in rows if r['table'] == 'data']
    if dr:
        L += ['## Data pipeline at real size vs the training step', '',
              "The config's training loader (decode, resize, its augmentation, both domains) on the real-size folder with "
              "the config's workers per domain, images/s after the first batch, beside the fastest eager variant measured "
              "for that config; a ratio below 1 means the loader, not the device, sets the pace.", '',
              md_table(['config', 'workers', 'batch', 'data images/s', 'step images/s', 'data / step'],
                       [[r['config'], r['workers'], r['batch'], _f(r['images_per_s'], '.2f'), _f(r['gpu_images_per_s'], '.2f'),
                         _f(r['ratio'], '.2f')] for r in dr]), '']
    er = [r for r in rows if r['table'] == 'eval']
    if er:
        L += ['## Evaluation', '', '`udabench.evaluate` over the target val images with the config\'s protocol (logits upsampled '
              'to the full-resolution labels), after one warm-up pass.', '',
              md_table(['config', 'protocol', 'input', 'labels', 'label res', 'forward', 'images', 'images/s'],
                       [[r['config'], r['protocol'], r['input'], r['labels'], r['label_res'], r['amp'], r['images'], _f(r['images_per_s'], '.2f')] for r in er]), '']
    for r in (x for x in rows if x['table'] == 'pseudo'):
        L += ['## Pseudo-labels', '', f"`generate_pseudo_labels` (median rule, two streaming passes, labels written at full "
              f"resolution) over the real-size target training folder with the model of `{r['config']}`.", '',
              md_table(['config', 'images', 'seconds', 'images/s'], [[r['config'], r['images'], _f(r['seconds']), _f(r['images_per_s'], '.2f')]]), '']
    for r in (x for x in rows if x['table'] == 'loss'):
        f32, b16, n, w = r['fp32'], r['bf16'], r['steps'], r['window']
        rel = [abs(x - y) / max(abs(x), 1e-12) for x, y in zip(f32, b16)]
        at = sorted({1, *(s for s in (10, 50, 100, 150, 200) if s <= n), n})
        L += ['## bf16 loss trajectory beside fp32', '',
              f"`{r['config']}`: the trainer's total loss over {n} iterations from the same initial weights on the same "
              f"{r['batches']} batches (cycled), in fp32 and under bf16 autocast (TF32 off in both). Relative difference per "
              f"iteration: mean {100 * r['mean_rel_diff']:.2f} %, largest {100 * r['max_rel_diff']:.2f} %; mean of the last "
              f"{w} iterations: fp32 {r['fp32_last_mean']:.4f}, bf16 {r['bf16_last_mean']:.4f}.", '',
              md_table(['iteration', 'fp32 total', 'bf16 total', 'relative difference %'],
                       [[s, f'{f32[s - 1]:.4f}', f'{b16[s - 1]:.4f}', f'{100 * rel[s - 1]:.2f}'] for s in at]), '']
    if skipped: L += ['## Not measured', ''] + [f'- {s}' for s in skipped] + ['']
    return '\n'.join(L).rstrip() + '\n'

def main(argv=None) -> list:
    "Run the benchmark; prints markdown tables and returns one dict row per measurement."
    import torch
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--tiny', action='store_true', help='tiny sizes and models (seconds on a CPU): checks the script, measures nothing useful')
    p.add_argument('--quick', action='store_true', help="each family's first config only, fewer loss-trajectory steps")
    p.add_argument('--data', help='a `udabench synth --real-size` folder (default: written into --work)')
    p.add_argument('--work', help='scratch folder (default: a temporary folder, removed at the end)')
    p.add_argument('--out', help='also write the report (bench_gpu.md) and the rows (bench_gpu.json) here, after every measurement')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--steps', type=int, help='timed iterations per variant (default 20; 3 with --tiny)')
    p.add_argument('--warmup', type=int, help='untimed iterations first (default 5; 1 with --tiny)')
    p.add_argument('--loss-steps', type=int, help='iterations of the bf16/fp32 loss trajectory (default 200, 50 with --quick, 10 with --tiny)')
    p.add_argument('--families', help=f"comma-separated subset of {','.join(f for f, _, _ in CONFIGS)}")
    p.add_argument('--variants', help=f"comma-separated subset of {','.join(VARIANTS)} (default: all; on a CPU without compile)")
    p.add_argument('--budget-s', type=float, default=0, help='time budget in seconds: later items that would not fit are skipped (0: none)')
    p.add_argument('--global-batch', action='store_true', help="SDCA at its config's global batch 4 + 4 instead of one GPU's 1 + 1")
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: torch default)')
    a = p.parse_args(argv)
    dev = torch.device(a.device)
    if dev.type == 'cuda':
        if not torch.cuda.is_available(): p.error('CUDA is not available: run with --tiny (CPU) or --device cpu')
        dev = torch.device('cuda', torch.cuda.current_device() if dev.index is None else dev.index)
    if a.threads: torch.set_num_threads(a.threads)
    steps = a.steps or (3 if a.tiny else 20)
    warmup = a.warmup if a.warmup is not None else (1 if a.tiny else 5)
    loss_steps = a.loss_steps or (10 if a.tiny else 50 if a.quick else 200)
    variants = a.variants.split(',') if a.variants else [v for v in VARIANTS if dev.type == 'cuda' or not VARIANTS[v].compile]
    for v in variants:
        if v not in VARIANTS: p.error(f"unknown variant '{v}'; choose from {', '.join(VARIANTS)}")
    fams = [f for f in CONFIGS if not a.families or f[0] in a.families.split(',')]
    if not fams: p.error(f"--families {a.families}: none of {', '.join(f for f, _, _ in CONFIGS)}")
    torch.backends.cudnn.benchmark = True
    import torch._dynamo
    torch._dynamo.config.automatic_dynamic_shapes = False   # the source and target sizes compile to two static graphs
    import logging
    from udabench.core import logger
    logger.setLevel(logging.WARNING)

    # what to measure, most telling first (a time budget cuts the tail): per config the variants it gets, then the
    # seed-style and best eager step of every family, the bf16 loss trajectory, the data / evaluation / pseudo-label rates,
    # the rest of the variants, the other configs of each family, and torch.compile last (its compilation is the costliest)
    plan = {}
    for i, (fam, _, cfgs) in enumerate(fams):
        for k, (cname, rel, ov) in enumerate(cfgs if not a.quick else cfgs[:1]):
            vs = list(VARIANTS) if k == 0 and (i == 0 or not a.tiny) else ['seed'] if a.tiny else list(SECONDARY)
            vs = [v for v in vs if v in variants and (i == 0 or not VARIANTS[v].ddp)]
            if vs: plan[cname] = dict(family=fam, rel=rel, ov=ov, primary=k == 0, variants=vs)
    order = list(plan)
    prim = [c for c in order if plan[c]['primary']]
    jobs = [('step', c, v) for c in prim for v in ('seed', 'bf16+cl') if v in plan[c]['variants']]
    jobs += [('loss', None, None)] + [('data', c, None) for c in (prim[:1] if a.tiny else prim)]
    jobs += [('eval', None, False), ('eval', None, True), ('pseudo', None, None)]
    jobs += [('step', c, v) for c in prim for v in plan[c]['variants'] if v not in ('seed', 'bf16+cl') and not VARIANTS[v].compile]
    jobs += [('step', c, v) for c in order if not plan[c]['primary'] for v in plan[c]['variants']]
    jobs += [('step', c, v) for c in prim for v in plan[c]['variants'] if VARIANTS[v].compile]

    tmp = None
    if a.work: work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    else: work = tmp = Path(tempfile.mkdtemp(prefix='udabench_bench_gpu_'))
    clock = Clock(a.budget_s)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    peak_tf = bf16_peak(name) if dev.type == 'cuda' else None
    rows, state = [], {}
    out = Path(a.out) if a.out else None
    if out: out.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        data = Path(a.data) if a.data else write_data(work/'data', a.tiny, max(1, os.cpu_count() or 1))
        from udabench.data.synthetic import read_settings
        st = read_settings(data)
        if not st or not st.get('real_size'): p.error(f"--data {data}: not a `udabench synth --real-size` folder")
        cuda_v = f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}" if dev.type == 'cuda' else 'no GPU'
        head = (f"# GPU training-step benchmark{' (--tiny: tiny sizes and models, a check of the script)' if a.tiny else ''}\n\n"
                f"{name}; torch {torch.__version__}; {cuda_v}; dense bf16 peak used for MFU: "
                f"{f'{peak_tf} TFLOPS' if peak_tf else 'unknown for this device (no MFU)'}. Data: `udabench synth --real-size` "
                f"({st['n_src']} source, {st['n_trg_train']} target training, {st['n_trg_val']} target val images"
                f"{'' if a.data else f', written in {time.perf_counter() - t:.1f} s'}). Step time: median of {steps} iterations "
                f"after {warmup}; speed-up: the seed-style step time over the variant's; FLOPs of one fp32 iteration counted "
                f"by torch.utils.flop_counter.")
        def save():
            if out is None: return
            (out/'bench_gpu.md').write_text(render(head, rows, clock.skipped, order))
            (out/'bench_gpu.json').write_text(json.dumps(rows, indent=1, default=str))

        def ready(c):
            "The config, its device batches and preparation (once per config)."
            if c not in state:
                pl = plan[c]
                cfg = load_cfg(pl['rel'], data, work, pl['ov'], pl['family'], a.tiny, a.global_batch)
                batches = device_batches(cfg, dev, 2 if a.tiny else 4, work)
                state[c] = dict(cfg=prepare(c, cfg, dev, batches, work), batches=batches)
            return state[c]

        def base(c): return next((r for r in rows if r['table'] == 'step' and r['config'] == c and r['variant'] == 'seed'), None)
        def best(c): return max((r['images_per_s'] for r in rows if r['table'] == 'step' and r['config'] == c
                                 and not VARIANTS[r['variant']].compile and not VARIANTS[r['variant']].ddp), default=None)
        seed_s = lambda c: base(c)['step_ms'] / 1000 if base(c) else 1.0
        ev_pref = ('sim', 'advent', 'sdca', 'depth_distribution')
        for kind, c, arg in jobs:
            try:
                if kind == 'step':
                    v = VARIANTS[arg]
                    need = (warmup + steps + 1) * seed_s(c) + (120 if v.compile else 10)   # compile: a guess for the schedule
                    if not clock.allow(f"{c} {arg}", need): continue
                    s_ = ready(c); cfg = s_['cfg']
                    r = time_variant(cfg, v, dev, s_['batches'], work, warmup, steps, count_flops=(arg == 'seed'))
                    b, per = base(c) or r, cfg.data.bs_src + cfg.data.bs_trg
                    flops = b.get('flops')
                    r.update(table='step', family=plan[c]['family'], config=c, variant=arg, optimiser=v.optim,
                             batch=f"{cfg.data.bs_src}+{cfg.data.bs_trg}",
                             sizes=f"{cfg.data.src_size[0]}x{cfg.data.src_size[1]} / {cfg.data.trg_size[0]}x{cfg.data.trg_size[1]}",
                             images_per_s=per / (r['step_ms'] / 1000), speedup=b['step_ms'] / r['step_ms'],
                             tflop_per_iter=flops / 1e12 if flops else None,
                             mfu_pct=(100 * flops / (r['step_ms'] / 1000) / (peak_tf * 1e12)) if flops and peak_tf else None)
                    rows.append(r)
                    print(f"   {c} {arg}: {r['step_ms']:.1f} ms ({clock.elapsed():.0f} s)", file=sys.stderr, flush=True)
                elif kind == 'data':
                    if not clock.allow(f"data pipeline of {c}", 20): continue
                    cfg = ready(c)['cfg']
                    r = data_rate(cfg, work, 3 if a.tiny else 20, 1 if a.tiny else cfg.data.workers)
                    gpu = best(c)
                    r.update(table='data', config=c, batch=f"{cfg.data.bs_src}+{cfg.data.bs_trg}", gpu_images_per_s=gpu,
                             ratio=(r['images_per_s'] / gpu) if gpu else None)
                    rows.append(r)
                elif kind == 'eval':
                    c = next((x for x in ev_pref if x in plan), None) or next((x for x in order if ready(x)['cfg'].eval.label_res == 'full'), None)
                    if c is None or not clock.allow(f"evaluation ({'bf16' if arg else 'fp32'})", 20): continue
                    cfg = ready(c)['cfg']
                    r = eval_rate(cfg, dev, work, 1 if a.tiny else cfg.data.workers, arg)
                    r.update(table='eval', config=c, protocol=cfg.eval.protocol); rows.append(r)
                elif kind == 'pseudo':
                    c = 'sdca' if 'sdca' in plan else order[0]
                    if not clock.allow('pseudo-labels', 30): continue
                    cfg = ready(c)['cfg']
                    r = pseudo_rate(cfg, dev, work, 1 if a.tiny else cfg.data.workers)
                    r.update(table='pseudo', config=c); rows.append(r)
                elif kind == 'loss':
                    c = order[0]
                    if not clock.allow(f"loss trajectory ({loss_steps} iterations, twice)", 2 * loss_steps * seed_s(c) + 10): continue
                    s_ = ready(c)
                    tj = loss_trajectory(s_['cfg'], dev, s_['batches'], work, loss_steps)
                    f32, b16 = tj['fp32'], tj['bf16']
                    rel = [abs(x - y) / max(abs(x), 1e-12) for x, y in zip(f32, b16)]
                    w = max(1, min(20, loss_steps // 5))
                    rows.append(dict(table='loss', config=c, steps=loss_steps, batches=len(s_['batches']), window=w, fp32=f32, bf16=b16,
                                     max_rel_diff=max(rel), mean_rel_diff=statistics.mean(rel),
                                     fp32_last_mean=statistics.mean(f32[-w:]), bf16_last_mean=statistics.mean(b16[-w:])))
            except Exception as e:   # one item failing (e.g. fused optimisers where the device has none) leaves the others
                clock.failed.append(f"{kind} {c or ''} {arg or ''}")
                clock.skipped.append(f"{kind} {c or ''} {arg or ''}: failed with {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
                print(f"   {kind} {c} {arg}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                _free(dev)
            save()
        text = render(head, rows, clock.skipped, order)
        print(text + f"\nbench_gpu.py: {clock.elapsed():.0f} s", flush=True)
        if out: (out/'bench_gpu.md').write_text(text + f"\nbench_gpu.py: {clock.elapsed():.0f} s\n")
    finally:
        if tmp is not None: shutil.rmtree(tmp, ignore_errors=True)
    if clock.failed: raise SystemExit(f"bench_gpu.py: {len(clock.failed)} measurement(s) failed: {', '.join(clock.failed)} (see 'Not measured')")
    return rows

if __name__ == '__main__':
    main()
