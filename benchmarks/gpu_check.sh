#!/usr/bin/env bash
# The one-GPU check of udabench, bounded in time (default 480 s in all; every step under `timeout`):
#   1. the environment (`bash scripts/setup.sh`, only when .venv cannot import udabench and torch),
#   2. real-size data in the original formats (`udabench synth --real-size`: GTA5 1914x1052, SYNTHIA 1280x760,
#      Cityscapes 2048x1024),
#   3. the `#| gpu` correctness cells (`nbdev_test --flags gpu` on the notebooks that have them),
#   4. a 50-iteration run of configs/gta52cityscapes/maxsquare_r101.yaml launched by `torchrun --nproc_per_node 1`,
#   5. benchmarks/bench_gpu.py (training step per model family and variant, data, evaluation, pseudo-labels, bf16),
#   6. `udabench bench --large` on a few methods (GPU_CHECK_BENCH_METHODS), with its wall time,
# and a report of the machine, the versions and every figure. On a CUDA machine it writes benchmarks/GPU_RESULTS.md;
# with --tiny (tiny sizes and models: a check of this script, e.g. on a CPU) it writes the same report to --out or a
# temporary folder, never to benchmarks/GPU_RESULTS.md.
#
#   bash benchmarks/gpu_check.sh                    # CUDA: the check, ~8 minutes
#   bash benchmarks/gpu_check.sh --tiny [--out DIR] # any machine: tiny sizes, a few minutes on two CPU cores
# Options: --budget-s S (total seconds, default 480), --out DIR (logs and report; default benchmarks/out/gpu_check on
# CUDA, a temporary folder with --tiny). Exit status 0 when every step passed, 1 otherwise, 2 for a usage error.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T0=$(date +%s)
TINY=0; OUT=''; BUDGET=${GPU_CHECK_BUDGET_S:-480}
while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) TINY=1 ;;
    --out) OUT=${2:?--out needs a folder}; shift ;;
    --budget-s) BUDGET=${2:?--budget-s needs seconds}; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac; shift
done
left() { echo $(( T0 + BUDGET - $(date +%s) )); }
if [ -z "$OUT" ]; then
  if [ $TINY = 1 ]; then OUT=$(mktemp -d "${TMPDIR:-/tmp}/udabench_gpu_check.XXXXXX"); else OUT=$ROOT/benchmarks/out/gpu_check; fi
fi
mkdir -p "$OUT/logs"; OUT=$(cd "$OUT" && pwd)
: > "$OUT/steps.txt"
FAILED=0

# step NAME CAP_SECONDS COMMAND...: run COMMAND under `timeout` (the smaller of CAP and the budget left), log in $OUT/logs/NAME.log
step() {
  local name=$1 cap=$2; shift 2
  local l; l=$(left)
  local t=$(( cap < l ? cap : l ))
  if [ "$t" -lt 20 ]; then
    echo "-- $name: not run (budget spent)"; echo "$name|not run: the ${BUDGET} s budget was spent|0|0" >> "$OUT/steps.txt"; FAILED=1; return 1
  fi
  echo "-- $name (at most $t s)"
  local s; s=$(date +%s)
  timeout --kill-after=10 "$t" "$@" > "$OUT/logs/$name.log" 2>&1
  local rc=$? w=$(( $(date +%s) - s )) st
  if [ $rc = 0 ]; then st=ok; elif [ $rc = 124 ] || [ $rc = 137 ]; then st="timed out after $t s"; else st="failed (exit $rc)"; fi
  [ $rc = 0 ] || { FAILED=1; tail -25 "$OUT/logs/$name.log"; }
  echo "   $st, $w s"
  echo "$name|$st|$w|$t" >> "$OUT/steps.txt"
  return $rc
}

# ---- 1. environment
if .venv/bin/python -c 'import udabench, torch' > /dev/null 2>&1; then
  echo "setup|skipped: .venv already imports udabench and torch|0|0" >> "$OUT/steps.txt"
else
  step setup 300 bash scripts/setup.sh .venv || { echo "gpu_check.sh: setup failed"; }
fi
export PATH="$ROOT/.venv/bin:$PATH" MPLBACKEND=Agg PYTHONWARNINGS=ignore
export UDABENCH_DATA="$OUT/cache"          # the large preset's embedded data
CUDA=$(python -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
if [ "$TINY" = 0 ] && [ "$CUDA" != 1 ]; then
  echo "gpu_check.sh: no CUDA device here; run with --tiny for the check of the script (it writes no GPU_RESULTS.md)" >&2; exit 2
fi
if [ "$CUDA" = 1 ]; then DEVICE=cuda; else DEVICE=cpu; export UDABENCH_TEST_DEVICE=cpu OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}; fi
NPROC=$(nproc 2>/dev/null || echo 2)
if [ "$TINY" = 1 ]; then REPORT=$OUT/GPU_RESULTS.md; else REPORT=$ROOT/benchmarks/GPU_RESULTS.md; fi
echo "gpu_check.sh: device $DEVICE, tiny $TINY, budget ${BUDGET} s, logs in $OUT"
nvidia-smi > "$OUT/logs/nvidia-smi.log" 2>&1 || echo "no nvidia-smi" > "$OUT/logs/nvidia-smi.log"

# ---- 2. real-size data
if [ "$TINY" = 1 ]; then COUNTS=(--n-src 2 --n-trg-train 2 --n-trg-heldout 0 --n-trg-val 1); else COUNTS=(--n-src 24 --n-trg-train 24 --n-trg-heldout 0 --n-trg-val 12); fi
step data 120 udabench synth --real-size --out "$OUT/data" "${COUNTS[@]}" --workers "$NPROC"

# ---- 3. the #| gpu cells (on the CPU with --tiny, where 05's float64 references of four full models take minutes: left out)
if [ "$TINY" = 1 ] && [ "$CUDA" != 1 ]; then GPU_NBS='13_train\.distributed|22_methods\.maxsquare|24_methods\.sdca'
else GPU_NBS='05_models\.deeplab|13_train\.distributed|22_methods\.maxsquare|24_methods\.sdca'; fi
step gpu_cells 200 env OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}" nbdev_test --flags gpu --n_workers $(( NPROC < 4 ? NPROC : 4 )) --do_print \
     --timing --file_re "^($GPU_NBS)\.ipynb$"

# ---- 4. one config under torchrun, one process, 50 iterations
DDP_OV=(data.src_root="$OUT/data/gta5" data.trg_root="$OUT/data/cityscapes" model.init=null train.iter_stop=50 train.eval_every=50
        train.ckpt_every=50 train.log_every=10 train.progress=false out="$OUT/runs")
if [ "$TINY" = 1 ]; then DDP_OV+=(model.width=8 'model.kwargs={layers: [1, 1, 1, 1]}' 'data.src_size=[80, 45]' 'data.trg_size=[64, 32]'
                                  'data.eval_size=[64, 32]' 'eval.size=[64, 32]' data.workers=1); fi
rm -rf "$OUT/runs"
step torchrun 150 torchrun --nproc_per_node 1 --master_port 29531 -m udabench.cli train --config configs/gta52cityscapes/maxsquare_r101.yaml "${DDP_OV[@]}"

# ---- 5. the GPU benchmark, within what is left but the last step's share
RESERVE=$([ "$TINY" = 1 ] && echo 60 || echo 120)
CAP=$(( $(left) - RESERVE )); [ $CAP -gt 300 ] && CAP=300
BG=(--data "$OUT/data" --out "$OUT/bench_gpu" --budget-s $(( CAP > 60 ? CAP - 30 : 30 )))
[ "$TINY" = 1 ] && BG+=(--tiny)
step bench_gpu "$CAP" python benchmarks/bench_gpu.py "${BG[@]}"

# ---- 6. udabench bench --large (on CUDA a few methods; --tiny: the large preset's model on the smoke counts)
if [ "$TINY" = 1 ]; then
  step bench_large 120 udabench bench --large --smoke --methods source_only minent --device "$DEVICE" --jobs 1 --out "$OUT/bench_large"
else
  METHODS=${GPU_CHECK_BENCH_METHODS:-source_only minent}
  step bench_large_data 60 python -c "from udabench.bench import PRESETS; print(PRESETS['large'].data(workers=$NPROC))"
  step bench_large 150 udabench bench --large --methods $METHODS --device cuda --out "$OUT/bench_large"
fi

# ---- the report
TOTAL=$(( $(date +%s) - T0 ))
python - "$OUT" "$REPORT" "$TINY" "$DEVICE" "$TOTAL" "$BUDGET" <<'PY'
import json, os, platform, re, subprocess, sys, datetime as dt
from pathlib import Path
out, report, tiny, device, total, budget = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == '1', sys.argv[4], int(sys.argv[5]), sys.argv[6]
def read(p, n=None):
    try: t = Path(p).read_text(errors='replace')
    except OSError: return ''
    return '\n'.join(t.splitlines()[-n:]) if n else t
steps = [l.split('|') for l in read(out/'steps.txt').splitlines() if l.strip()]
import torch, torchvision
try: import udabench; ver = udabench.__version__
except Exception as e: ver = f'not importable ({e})'
sha = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip() or 'unknown'
dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], capture_output=True, text=True).stdout.strip()
gpu = ', '.join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) or 'none'
smi = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version,memory.total,power.limit,clocks.max.sm', '--format=csv,noheader'],
                     capture_output=True, text=True).stdout.strip() if gpu != 'none' else ''
cpu = next((l.split(':', 1)[1].strip() for l in read('/proc/cpuinfo').splitlines() if l.lower().startswith('model name')), platform.machine())
L = [f"# udabench GPU check{' (--tiny: tiny sizes and models, a check of the script, not GPU figures)' if tiny else ''}", '',
     f"Run by `bash benchmarks/gpu_check.sh{' --tiny' if tiny else ''}` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC in "
     f"{total} s (budget {budget} s). Every figure below was printed by the step that measured it.", '',
     '## Machine and versions', '', '| what | value |', '|---|---|',
     f"| GPU | {gpu} |", *([f"| nvidia-smi (name, driver, memory, power limit, max SM clock) | {smi} |"] if smi else []),
     f"| CPU | {cpu}, {os.cpu_count()} cores |", f"| device used | {device} |",
     f"| torch | {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version() if torch.cuda.is_available() else '–'}) |",
     f"| torchvision | {torchvision.__version__} |", f"| Python | {platform.python_version()} |", f"| OS | {platform.platform()} |",
     f"| udabench | {ver}, commit {sha}{' (with uncommitted changes)' if dirty else ''} |", '',
     '## Steps', '', '| step | status | wall s | limit s |', '|---|---|---|---|'] + \
    [f"| {s[0]} | {s[1]} | {s[2]} | {s[3]} |" for s in steps] + ['']
L += ['## Correctness: the `#| gpu` cells', '', '`nbdev_test --flags gpu` on the notebooks with `#| gpu` cells (their other cells run too):', '',
      '```text', *[l for l in read(out/'logs'/'gpu_cells.log').splitlines() if re.search(r'ipynb: \d+ secs|Success|Failed|Error|assert', l)][-30:], '```', '']
tr = read(out/'logs'/'torchrun.log')
res = sorted((out/'runs').glob('*/results.json'))
L += ['## One config under torchrun (one process, 50 iterations)', '',
      '`torchrun --nproc_per_node 1 -m udabench.cli train --config configs/gta52cityscapes/maxsquare_r101.yaml` on the real-size '
      'data (roots, `model.init=null`, `train.iter_stop=50`, evaluation and checkpoint at 50). With one process '
      '`init_distributed` creates no process group and the model is not wrapped in DistributedDataParallel; bench_gpu.py\'s '
      '`bf16+cl+ddp` row times the wrapper.', '']
if res:
    r = json.loads(res[-1].read_text())
    L += [f"Run `{r['run']}`: {r['iterations']} iterations in {r['seconds']:.1f} s ({r['seconds'] / max(1, r['iterations']):.3f} s per "
          f"iteration, evaluation and checkpoints included); final mIoU on the val split {100 * r['last']['miou']:.2f} % "
          f"(random initial weights: a check of the pipeline, not a result).", '']
else: L += ['No results.json was written; the end of its log:', '', '```text', *tr.splitlines()[-20:], '```', '']
bg = read(out/'bench_gpu'/'bench_gpu.md')
L += [re.sub(r'(?m)^#', '##', bg).strip() if bg else '## GPU benchmark\n\nbench_gpu.py wrote no report; see its log.', '']
rep = read(out/'bench_large'/'report.md')
bl = next((s for s in steps if s[0] == 'bench_large'), None)
L += ['## `udabench bench --large`' + (' --smoke' if tiny else ''), '',
      f"Wall time {bl[2]} s ({bl[1]})." if bl else 'Not run.', '']
if rep: L += [re.sub(r'(?m)^#', '###', rep).split('### Figures')[0].strip(), '']
report.parent.mkdir(parents=True, exist_ok=True)
report.write_text('\n'.join(L).rstrip() + '\n')
print(f"wrote {report}")
PY
echo "gpu_check.sh: $([ $FAILED = 0 ] && echo 'every step passed' || echo 'some steps FAILED') in $TOTAL s (budget $BUDGET s); report: $REPORT"
exit $FAILED
