"""Run every udabench speed / memory benchmark and collect the results into `benchmarks/RESULTS.md`.

Each `benchmarks/bench_<topic>.py` runs in its own Python process (so one benchmark's threads, caches and memory never
affect the next), through its `main(argv)`: the table it prints and the rows it returns are both kept. Before each
benchmark the machine's load average is recorded, because on a shared machine other jobs slow everything down; after
it, the process's CPU time and peak resident memory (from the operating system's accounting of the child process).
RESULTS.md is also copied into the docs page `nbs/benchmarks.ipynb` (its results cell), unless `--no-page` or `--out`.

    python benchmarks/run_all.py                 # every benchmark at its default size (2-core CPU: several minutes each)
    python benchmarks/run_all.py --quick         # `--quick` is passed to every benchmark
    python benchmarks/run_all.py --only data,eval --out /tmp/RESULTS.md
    python benchmarks/run_all.py --list          # what would run
    python benchmarks/run_all.py --page-only     # copy RESULTS.md into the docs page (nbs/benchmarks.ipynb) only

A benchmark that needs a GPU (`NEEDS_CUDA`: benchmarks/bench_gpu.py) runs when CUDA is available and is listed as
skipped otherwise.

The exit status is 1 when a benchmark failed (its error is in the results file), 0 otherwise.
"""
from __future__ import annotations
import argparse, ast, datetime as dt, json, math, os, platform, re, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# The topics udabench measures, in reading order: (title, keyword in the file name). A file that matches no topic
# still runs (after these); a topic without a file is listed as not measured.
TOPICS = (('Data pipeline', 'data'), ('Training step', 'train'), ('Evaluation', 'eval'),
          ('Pseudo-label memory', 'pseudo'), ('Density maps', 'density'), ('Embeddings', 'embed'),
          ('Synthetic data generation', 'synthetic'), ('GPU training step (one device)', 'gpu'))
NEEDS_CUDA = ('gpu',)   # keywords of the benchmark files that only run where CUDA is available

# --------------------------------------------------------------------------------------------------------------------
# Finding the benchmarks
# --------------------------------------------------------------------------------------------------------------------

def docstring(path:Path) -> str:
    "The module docstring of `path` ('' when it has none or does not parse)."
    try: return ast.get_docstring(ast.parse(path.read_text())) or ''
    except (SyntaxError, ValueError, OSError): return ''

def discover(bench_dir:Path=HERE) -> tuple[list, list]:
    "([(title, path)] of the benchmark files in reading order, [titles of topics without a file])."
    files = sorted(bench_dir.glob('bench_*.py'))
    found, missing, used = [], [], set()
    for title, key in TOPICS:
        hits = [f for f in files if key in f.stem[len('bench_'):] and f not in used]
        if not hits: missing.append(title)
        for f in hits: found.append((title, f)); used.add(f)
    for f in files:
        if f not in used:
            first = docstring(f).split('\n')[0].strip().rstrip('.')
            found.append((first.split(':')[0] if first else f.stem[len('bench_'):].replace('_', ' ').capitalize(), f))
    return found, missing

# --------------------------------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------------------------------

def cpu_model() -> str:
    "The CPU model name from /proc/cpuinfo (else `platform.processor()`)."
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.lower().startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine() or 'unknown'

def mem_total_gib() -> float:
    try:
        for line in Path('/proc/meminfo').read_text().splitlines():
            if line.startswith('MemTotal:'): return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError): pass
    return float('nan')

def machine() -> dict:
    "CPU, cores, memory, Python, torch, GPU, udabench commit."
    info = dict(cpu=cpu_model(), cores=os.cpu_count(), memory_gib=round(mem_total_gib(), 1),
                os=platform.platform(), python=platform.python_version())
    try:
        import torch
        info['torch'] = torch.__version__
        info['torch_threads'] = torch.get_num_threads()
        info['gpu'] = ', '.join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) or 'none'
        info['cuda'] = torch.version.cuda if torch.cuda.is_available() else None
    except Exception as e: info.update(torch=f'not importable ({e})', gpu='none')
    try:
        sha = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=ROOT).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], capture_output=True, text=True,
                               cwd=ROOT).stdout.strip()
        info['commit'] = (sha + (' (with uncommitted changes)' if dirty else '')) if sha else None
    except OSError: info['commit'] = None
    return info

def cuda_available() -> bool:
    "Whether torch sees a CUDA device (False when torch does not import)."
    try:
        import torch
        return torch.cuda.is_available()
    except Exception: return False

def needs_cuda(path:Path) -> bool: return any(k in path.stem[len('bench_'):] for k in NEEDS_CUDA)

def loadavg() -> tuple:
    "The 1, 5 and 15 minute load averages (NaNs where the OS has none)."
    try: return tuple(round(v, 2) for v in os.getloadavg())
    except OSError: return (float('nan'),) * 3

# --------------------------------------------------------------------------------------------------------------------
# Running one benchmark in its own process
# --------------------------------------------------------------------------------------------------------------------

def _child(path:str, rows_out:str, argv:list):
    "In the child process: import the benchmark by name, run `main(argv)`, write its rows as JSON."
    sys.path.insert(0, str(Path(path).parent))   # spawned sub-processes of the benchmark find it by name too
    import importlib
    mod = importlib.import_module(Path(path).stem)
    if not hasattr(mod, 'main'): raise SystemExit(f"{path}: has no main()")
    rows = mod.main(argv)
    Path(rows_out).write_text(json.dumps(rows if isinstance(rows, list) else [], default=_jsonable))

def _jsonable(o):
    try: return o.item()            # numpy / torch scalars
    except Exception: return str(o)

def run_one(path:Path, argv:list, timeout:float, echo:bool=True) -> dict:
    "Run benchmark `path` with `argv` in a fresh process; its printed output, rows, times, memory and load."
    with tempfile.TemporaryDirectory() as tmp:
        rows_f = Path(tmp)/'rows.json'
        cmd = [sys.executable, str(Path(__file__).resolve()), '--child', str(path), str(rows_f), '--', *argv]
        env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'MPLBACKEND': 'Agg'}
        load = loadavg()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors='replace')
        lines, timed_out = [], False
        deadline = time.monotonic() + timeout
        import selectors
        sel = selectors.DefaultSelector(); sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True; proc.kill(); break
            if not sel.select(timeout=min(left, 5.0)): continue
            line = proc.stdout.readline()
            if not line: break
            lines.append(line)
            if echo: print('   ' + line, end='', flush=True)
        sel.close()
        # the child's own CPU time and peak RSS, from the kernel (wait4 reports exactly this process and its waited-for children)
        _, status, ru = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        rows = json.loads(rows_f.read_text()) if rows_f.exists() else []
    out = ''.join(lines)
    ok = proc.returncode == 0 and not timed_out
    return dict(ok=ok, returncode=proc.returncode, timed_out=timed_out, wall_s=wall, cpu_s=ru.ru_utime + ru.ru_stime,
                peak_rss_mb=ru.ru_maxrss / 1024 if sys.platform != 'darwin' else ru.ru_maxrss / 2**20,
                load_before=load, load_after=loadavg(), output=out, rows=rows)

# --------------------------------------------------------------------------------------------------------------------
# RESULTS.md
# --------------------------------------------------------------------------------------------------------------------

def fmt(v) -> str:
    "A table cell: floats to 4 significant digits, containers as compact JSON, '|' escaped."
    if isinstance(v, bool) or v is None: s = str(v)
    elif isinstance(v, float):
        s = ('nan' if math.isnan(v) else f'{v:.4g}' if abs(v) < 1000 else f'{v:.0f}' if abs(v) < 1e12 else f'{v:.3e}')
    elif isinstance(v, (list, dict, tuple)): s = json.dumps(v, separators=(',', ':'), default=str)
    else: s = str(v)
    return s.replace('|', '\\|').replace('\n', ' ')

def rows_table(rows:list) -> str:
    "A markdown table of dict rows (columns in order of first appearance)."
    rows = [r for r in rows if isinstance(r, dict)]
    if not rows: return ''
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return '\n'.join(['| ' + ' | '.join(keys) + ' |', '|' + '---|' * len(keys)] +
                     ['| ' + ' | '.join(fmt(r.get(k, '')) for k in keys) + ' |' for r in rows])

def _load_note(results:list, cores:int) -> str:
    loads = [r['load_before'][0] for r in results if r.get('load_before') and not math.isnan(r['load_before'][0])]
    if not loads: return 'The load average of the machine was not available.'
    lo, hi = min(loads), max(loads)
    s = (f"1-minute load average before each benchmark: {lo:.2f} to {hi:.2f}, on {cores} cores "
         f"(recorded per benchmark below).")
    if hi > cores:
        s += (f" **The machine was a shared {cores}-core VM busy with other jobs while these figures were taken:** "
              "absolute times are inflated and noisy; the ratios between variants measured side by side in one run are "
              "the figures to read.")
    else:
        s += (" No other job ran: the benchmarks run one after another, so each 1-minute figure still counts the one "
              "before. Ratios between variants measured side by side in one run are the figures to compare across machines.")
    return s

def results_md(info:dict, results:list, missing:list, argv:list, started:str, total_s:float, skipped:list=()) -> str:
    "The text of RESULTS.md."
    flag = (' ' + ' '.join(argv)) if argv else ''
    L = ['# udabench benchmark results', '',
         f"Measured on {started} (UTC) by `python benchmarks/run_all.py{flag}` in {total_s / 60:.1f} minutes. "
         "Every number below was printed or returned by a benchmark script of `benchmarks/`; none is typed in by hand.", '',
         '## Machine', '', '| what | value |', '|---|---|',
         f"| CPU | {info['cpu']} |", f"| cores | {info['cores']} |", f"| memory | {info['memory_gib']} GiB |",
         f"| GPU | {info.get('gpu', 'none')} |", f"| torch | {info.get('torch')} ({info.get('torch_threads')} threads) |",
         f"| Python | {info['python']} |", f"| OS | {info['os']} |", f"| udabench commit | {info.get('commit') or 'unknown'} |", '',
         _load_note(results, info['cores'] or 1), '',
         '## Reproduce', '', 'From the repository root, in the project environment:', '', '```sh',
         'source .venv/bin/activate',
         'python benchmarks/run_all.py --quick   # these tables, small sizes',
         'python benchmarks/run_all.py           # default sizes',
         'python benchmarks/bench_<topic>.py [--quick]   # one benchmark alone',
         'udabench bench --quick                  # accuracy: every method on the embedded domain shift',
         'python benchmarks/calibrate_shift.py    # source-only / oracle ratio per severity of the embedded shift',
         '```', '', 'Compare figures only between runs on the same machine.', '',
         '## Summary', '',
         '| benchmark | script | status | wall s | CPU s | peak RSS MB | load before (1/5/15 min) |', '|---|---|---|---|---|---|---|']
    for r in results:
        st = 'ok' if r['ok'] else 'timed out' if r['timed_out'] else f"failed (exit {r['returncode']})"
        L.append(f"| [{r['title']}](#{anchor(r['title'])}) | `{r['script']}` | {st} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                 f"{r['peak_rss_mb']:.0f} | {' / '.join(f'{v:.2f}' for v in r['load_before'])} |")
    for t, script in skipped: L.append(f"| {t} | `{script}` | skipped: no CUDA device on this machine | | | | |")
    for t in missing: L.append(f"| {t} | – | not measured: no `benchmarks/bench_*.py` for it in this checkout | | | | |")
    L.append('')
    for r in results:
        L += [f"## {r['title']}", '']
        doc = r['doc'].split('\n\n')[0].replace('\n', ' ').strip()
        if doc: L += [doc, '']
        L += [f"`python {r['script']}{flag}` · load average before {r['load_before'][0]:.2f} (1 min), after "
              f"{r['load_after'][0]:.2f} · {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, peak RSS {r['peak_rss_mb']:.0f} MB "
              "(the benchmark process; sub-processes it waits for included)", '']
        if not r['ok']:
            why = f"timed out after {r['wall_s']:.0f} s" if r['timed_out'] else f"exited with status {r['returncode']}"
            L += [f"**This benchmark {why}; the end of its output:**", '', '```text', *r['output'].rstrip().splitlines()[-30:], '```', '']
            continue
        t = rows_table(r['rows'])
        if t: L += ['Rows returned by its main function:', '', t, '']
        printed = r['output'].rstrip().splitlines()
        if t: printed = [l for l in printed if not l.lstrip().startswith('|')]   # markdown tables: the rows above
        if any(l.strip() for l in printed):
            L += ['Printed output' + (' (its markdown tables are the rows above)' if len(printed) < len(r['output'].rstrip().splitlines()) else '') + ':',
                  '', '```text', *printed, '```', '']
    if missing:
        L += ['## Not measured', '', 'No benchmark script exists yet for: ' + ', '.join(missing) + '.', '']
    return '\n'.join(L).rstrip() + '\n'

def anchor(title:str) -> str:
    return re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')

# --------------------------------------------------------------------------------------------------------------------
# The docs page: nbs/benchmarks.ipynb holds a copy of RESULTS.md in one markdown cell (a static page needs no
# execution to build, and a page whose source changes is never served stale from the docs builder's cache)
# --------------------------------------------------------------------------------------------------------------------

PAGE = ROOT/'nbs'/'benchmarks.ipynb'
MARK = '<!-- pasted from benchmarks/RESULTS.md by `python benchmarks/run_all.py`: do not edit by hand -->'

def page_markdown(text:str) -> str:
    "RESULTS.md as the page shows it: its title and its 'Reproduce' section dropped (the page has its own), sections one level down."
    head, *secs = re.split(r'(?m)^## ', text)
    head = re.sub(r'(?m)^# .*\n?', '', head)
    return (head + ''.join('### ' + s for s in secs if not s.startswith('Reproduce'))).strip() + '\n'

def page_cell(text:str) -> str:
    "The source of the page's results cell for RESULTS.md `text`."
    return MARK + '\n\n' + page_markdown(text)

def update_page(text:str, page:Path=PAGE) -> bool:
    "Put RESULTS.md `text` into the results cell of the benchmarks page (the markdown cell starting with `MARK`)."
    if not page.is_file(): return False
    raw = page.read_text()
    nb = json.loads(raw)
    cells = [c for c in nb.get('cells', []) if c.get('cell_type') == 'markdown' and ''.join(c.get('source', '')).startswith(MARK)]
    if not cells: return False
    cells[0]['source'] = page_cell(text).splitlines(keepends=True)
    new = json.dumps(nb, indent=1, ensure_ascii=False) + '\n'    # the layout nbdev_clean writes
    if new != raw:
        tmp = page.with_name(f'.{page.name}.tmp'); tmp.write_text(new); os.replace(tmp, page)
    return True

# --------------------------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--quick', action='store_true', help='pass --quick to every benchmark')
    p.add_argument('--only', help='comma-separated keywords: run the benchmarks whose file name contains one (e.g. data,eval)')
    p.add_argument('--out', default=str(HERE/'RESULTS.md'), help='results file (default benchmarks/RESULTS.md)')
    p.add_argument('--timeout', type=float, default=1800, help='seconds allowed per benchmark (default 1800)')
    p.add_argument('--list', action='store_true', help='list the benchmarks and exit')
    p.add_argument('--no-page', action='store_true', help='do not copy the results into the docs page nbs/benchmarks.ipynb')
    p.add_argument('--page-only', action='store_true', help='only copy benchmarks/RESULTS.md into the docs page; run nothing')
    a = p.parse_args(argv)
    default_out = Path(a.out).resolve() == (HERE/'RESULTS.md').resolve()
    if a.page_only:
        f = HERE/'RESULTS.md'
        if not f.is_file(): p.error(f"{f} does not exist: run the benchmarks first")
        ok = update_page(f.read_text())
        print(f"{'updated' if ok else 'no results cell in'} {PAGE.relative_to(ROOT)}")
        return 0 if ok else 1
    found, missing = discover()
    if a.only:
        keys = [k.strip() for k in a.only.split(',') if k.strip()]
        found = [(t, f) for t, f in found if any(k in f.stem for k in keys)]
        missing = []
        if not found: p.error(f"--only {a.only}: no benchmark file matches")
    cuda = cuda_available()
    skipped = [(t, f.relative_to(ROOT).as_posix()) for t, f in found if needs_cuda(f) and not cuda]
    found = [(t, f) for t, f in found if cuda or not needs_cuda(f)]
    if a.list:
        for t, f in found: print(f"{t:<22} {f.relative_to(ROOT)}")
        for t, f in skipped: print(f"{t:<22} {f} (needs CUDA: skipped on this machine)")
        for t in missing: print(f"{t:<22} (no benchmark script)")
        return 0
    argv_b = ['--quick'] if a.quick else []
    info = machine()
    started = dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M')
    print(f"{len(found)} benchmark(s) on {info['cpu']}, {info['cores']} cores, GPU {info.get('gpu')}, torch {info.get('torch')}")
    for t in missing: print(f"skipping '{t}': no benchmark script for it")
    for t, f in skipped: print(f"skipping '{t}' ({f}): no CUDA device on this machine")
    t0, results = time.perf_counter(), []
    for title, f in found:
        rel = f.relative_to(ROOT).as_posix()
        print(f"\n== {title}: python {rel} {' '.join(argv_b)}  (load average {loadavg()[0]:.2f})", flush=True)
        r = run_one(f, argv_b, a.timeout)
        r.update(title=title, script=rel, doc=docstring(f))
        print(f"== {'ok' if r['ok'] else 'FAILED'}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, peak RSS {r['peak_rss_mb']:.0f} MB",
              flush=True)
        results.append(r)
    text = results_md(info, results, missing, argv_b, started, time.perf_counter() - t0, skipped)
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f'.{out.name}.tmp'); tmp.write_text(text); os.replace(tmp, out)
    print(f"\nwrote {out}")
    if default_out and not a.no_page and update_page(text): print(f"copied it into {PAGE.relative_to(ROOT)}")
    return 0 if all(r['ok'] for r in results) else 1

if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        sep = sys.argv.index('--') if '--' in sys.argv else len(sys.argv)
        _child(sys.argv[2], sys.argv[3], sys.argv[sep + 1:])
    else: sys.exit(main())
