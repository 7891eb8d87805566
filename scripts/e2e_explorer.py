#!/usr/bin/env python
"""End-to-end check of the interactive explorer (`udabench.viz.widgets.Explorer`) in JupyterLab, in headless Chromium.

Usage (from the repository root, in the project's environment):

    python scripts/e2e_explorer.py [--screenshot explorer.png] [--chromium /usr/bin/chromium] [--timeout 300]

It starts `jupyter lab` on 127.0.0.1 (a random free port, a random token, `--allow-root`, every Jupyter directory in a
temporary folder), writes a temporary notebook that builds an `Explorer` on toy scenes with two untrained small models, and
drives it with the PyPI `playwright` package through Debian's Chromium (`executable_path`, no browser download;
`apt-get update && apt-get install -y chromium` if it is missing).

Checks (one line each; the last line is `N passed, N failed`; exit status 1 on any failure):
- the notebook opens and its cell runs; the explorer renders: its image (a PNG drawn by the kernel) loads, and the
  slider, the dropdowns, the map buttons and the status line are there, the status naming image 0;
- pressing the right arrow key on the focused image slider moves it: the kernel redraws (the status line, written by the
  kernel, says index=1) and the picture changes (new image source and different pixels);
- choosing another model in the model dropdown: the status says model=adapted and the picture changes;
- clicking the 'error' map button: the status says map=error;
- a new cell run in the same kernel prints the explorer's state: index 1, model 'adapted', map 'error';
- no uncaught error in the page; a screenshot of the notebook is written to --screenshot.
"""
from __future__ import annotations
import argparse, hashlib, json, os, secrets, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync']

NOTEBOOK_CODE = '''\
import torch
from udabench.models.checkpoints import build_model
from udabench.viz.widgets import Explorer, toy_samples
from udabench.data.labels import LabelSpace
def make(seed):
    torch.manual_seed(seed)
    return build_model(dict(name='small', n_cls=4, width=8, kwargs=dict(out_stride=4)))
lspace = LabelSpace('toy4', ('road', 'building', 'sky', 'car'), [(128, 64, 128), (70, 70, 70), (70, 130, 180), (0, 0, 142)])
data = {'src': toy_samples(4, size=(64, 96), seed=0, prefix='src'),
        'trg': toy_samples(3, size=(64, 96), shift=1.0, seed=1, labelled=False, prefix='trg')}
ex = Explorer(data, {'source only': make(0), 'adapted': make(1)}, layers=['feat', 'layer2'], lspace=lspace,
              n_per_class=30, embed_kwargs=dict(perplexity=10))
ex.precompute()
ex'''

class Checks:
    "Named pass/fail results."
    def __init__(self): self.passed, self.failed = 0, []
    def __call__(self, name:str, ok:bool, detail:str=''):
        if ok: self.passed += 1; print(f'ok    {name}', flush=True)
        else: self.failed.append(name); print(f'FAIL  {name}' + (f': {detail}' if detail else ''), flush=True)
        return ok

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def write_notebook(path:Path):
    nb = {'cells': [{'cell_type': 'code', 'execution_count': None, 'id': 'explorer', 'metadata': {}, 'outputs': [],
                     'source': NOTEBOOK_CODE}],
          'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}},
          'nbformat': 4, 'nbformat_minor': 5}
    path.write_text(json.dumps(nb, indent=1))

def start_lab(tmp:Path, port:int, token:str, log):
    "Start JupyterLab with all its state under `tmp`; returns the process."
    env = dict(os.environ)
    for k, sub in [('JUPYTER_CONFIG_DIR', 'config'), ('JUPYTER_RUNTIME_DIR', 'runtime'), ('JUPYTER_DATA_DIR', 'data'),
                   ('JUPYTERLAB_SETTINGS_DIR', 'settings'), ('JUPYTERLAB_WORKSPACES_DIR', 'workspaces'), ('IPYTHONDIR', 'ipython')]:
        (tmp/sub).mkdir(exist_ok=True); env[k] = str(tmp/sub)
    # no news or update checks (no internet): their notification would cover the page
    nset = tmp/'settings'/'@jupyterlab'/'apputils-extension'; nset.mkdir(parents=True, exist_ok=True)
    (nset/'notification.jupyterlab-settings').write_text(json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))
    env.setdefault('MPLBACKEND', 'Agg')
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--allow-root', '--ip=127.0.0.1', f'--port={port}',
           f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={tmp/"work"}', '--ServerApp.open_browser=False',
           '--LabApp.news_url=None', '--ExtensionApp.open_browser=False']
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

def wait_ready(base:str, token:str, proc, timeout:float=90) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None: return False
        try:
            with urllib.request.urlopen(f'{base}/api/status?token={token}', timeout=5) as r:
                if r.status == 200: return True
        except Exception: time.sleep(0.5)
    return False

def stop(proc):
    if proc.poll() is None:
        try: os.killpg(proc.pid, 15)
        except ProcessLookupError: return
        try: proc.wait(15)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, 9); proc.wait(5)

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--screenshot', default=str(Path(tempfile.gettempdir())/'udabench_explorer_e2e.png'))
    ap.add_argument('--chromium', default=shutil.which('chromium') or '/usr/bin/chromium')
    ap.add_argument('--timeout', type=float, default=300, help='seconds to wait for the explorer to render')
    args = ap.parse_args(argv)
    check = Checks()
    if not Path(args.chromium).exists():
        check('chromium found', False, f'{args.chromium} does not exist (apt-get install -y chromium)')
        print(f'{check.passed} passed, {len(check.failed)} failed'); return 1
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix='udabench-e2e-'))
    (tmp/'work').mkdir()
    write_notebook(tmp/'work'/'explorer.ipynb')
    port, token = free_port(), secrets.token_hex(16)
    base = f'http://127.0.0.1:{port}'
    log = open(tmp/'jupyter.log', 'w')
    proc = start_lab(tmp, port, token, log)
    try:
        if not check('JupyterLab starts', wait_ready(base, token, proc), f'see {tmp/"jupyter.log"}'):
            print((tmp/'jupyter.log').read_text()[-3000:]); return 1
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(str(tmp/'chromium-profile'), executable_path=args.chromium,
                                                        headless=True, args=CHROMIUM_FLAGS, viewport={'width': 1400, 'height': 1000})
            page = ctx.new_page()
            errors = []
            page.on('pageerror', lambda e: errors.append(str(e)))
            page.goto(f'{base}/lab/tree/explorer.ipynb?token={token}', wait_until='domcontentloaded')
            page.wait_for_selector('.jp-Notebook .jp-Cell .cm-content', timeout=120_000)
            # wait for the kernel to be idle, then run the cell (a run asked for before the kernel is up is dropped)
            idle = '''() => [...document.querySelectorAll('.jp-StatusBar-TextItem, .jp-StatusBar-Item')]
                                .some(e => /\\|\\s*Idle/.test(e.textContent))'''
            page.wait_for_function(idle, timeout=120_000)
            started = '''() => { const p = document.querySelector('.jp-Notebook .jp-Cell .jp-InputPrompt');
                                      return p && /\\[(\\*|\\d+)\\]/.test(p.textContent); }'''
            for attempt in range(3):
                page.click('.jp-Notebook .jp-Cell >> nth=0 >> .cm-content')
                page.keyboard.press('Control+Enter')
                try: page.wait_for_function(started, timeout=15_000); break
                except Exception: page.wait_for_timeout(2000)
            img_sel = '.jp-OutputArea img.widget-image'
            try:
                page.wait_for_function(f'''() => {{ const i = document.querySelector('{img_sel}');
                                                   return i && i.complete && i.naturalWidth > 0; }}''', timeout=args.timeout * 1000)
                ok = True
            except Exception as e:
                ok = False; detail = str(e).splitlines()[0]
                out = page.eval_on_selector_all('.jp-OutputArea-output', 'els => els.map(e => e.innerText).join("\\n")')
                detail += f'; cell output: {out[-1500:]}'
            if not check('the explorer renders (kernel-drawn image loaded)', ok, '' if ok else detail):
                page.screenshot(path=args.screenshot, full_page=True)
                print(f'{check.passed} passed, {len(check.failed)} failed'); return 1
            parts = {'image slider': '.jp-OutputArea .widget-slider .noUi-handle',
                     'dataset, model and layer dropdowns': '.jp-OutputArea .widget-dropdown select',
                     'map buttons': '.jp-OutputArea .widget-toggle-buttons button',
                     'status line': '.jp-OutputArea .widget-html'}
            counts = {k: len(page.query_selector_all(v)) for k, v in parts.items()}
            check('the controls render (slider, 3 dropdowns, 5 map buttons, status)',
                  counts['image slider'] >= 2 and counts['dataset, model and layer dropdowns'] == 3 and
                  counts['map buttons'] == 5 and counts['status line'] == 1, str(counts))
            status = lambda: page.inner_text('.jp-OutputArea .widget-html')
            check('the status names image 0 of src', 'dataset=src index=0' in status(), status())
            img = page.query_selector(img_sel)
            def snap(): return page.get_attribute(img_sel, 'src'), hashlib.sha1(img.screenshot()).hexdigest()
            src0, px0 = snap()

            # the image slider: focus its handle, press the right arrow key
            handle = page.query_selector_all(parts['image slider'])[0]
            handle.focus(); page.keyboard.press('ArrowRight')
            try:
                page.wait_for_function('''() => /index=1 /.test(document.querySelector('.jp-OutputArea .widget-html').innerText)''', timeout=60_000)
                ok = True
            except Exception: ok = False
            check('arrow key on the image slider: the kernel sees index=1', ok, status())
            try: page.wait_for_function(f'''() => document.querySelector('{img_sel}').src !== {json.dumps(src0)}''', timeout=30_000); ok = True
            except Exception: ok = False
            src1, px1 = snap()
            check('the picture changes with the image (new PNG, different pixels)', ok and src1 != src0 and px1 != px0,
                  f'src changed {src1 != src0}, pixels changed {px1 != px0}')

            # the model dropdown
            sel = page.query_selector_all(parts['dataset, model and layer dropdowns'])[1]
            sel.select_option(label='adapted')
            try: page.wait_for_function('''() => /model=adapted /.test(document.querySelector('.jp-OutputArea .widget-html').innerText)''', timeout=60_000); ok = True
            except Exception: ok = False
            check('model dropdown: the kernel sees model=adapted', ok, status())
            try: page.wait_for_function(f'''() => document.querySelector('{img_sel}').src !== {json.dumps(src1)}''', timeout=30_000); ok = True
            except Exception: ok = False
            src2, px2 = snap()
            check('the picture changes with the model', ok and px2 != px1, f'pixels changed {px2 != px1}')

            # the map buttons
            page.click('.jp-OutputArea .widget-toggle-buttons button:has-text("error")')
            try: page.wait_for_function('''() => /map=error/.test(document.querySelector('.jp-OutputArea .widget-html').innerText)''', timeout=60_000); ok = True
            except Exception: ok = False
            check("map button 'error': the kernel sees map=error", ok, status())

            # ask the kernel itself, from a new cell
            page.click('.jp-Notebook .jp-Cell .jp-InputPrompt')
            page.keyboard.press('Escape'); page.keyboard.press('b')
            page.wait_for_function("() => document.querySelectorAll('.jp-Notebook .jp-CodeCell').length >= 2", timeout=20_000)
            page.click('.jp-Notebook .jp-CodeCell >> nth=1 >> .cm-content')
            page.keyboard.type("print('STATE', ex.state['index'], ex.state['model'], ex.state['map'], ex.n_renders)")
            page.keyboard.press('Shift+Enter')
            try:
                page.wait_for_function("() => /STATE 1 adapted error/.test(document.querySelectorAll('.jp-Notebook .jp-CodeCell')[1].innerText)", timeout=60_000)
                ok = True
            except Exception: ok = False
            out = page.eval_on_selector_all('.jp-Notebook .jp-CodeCell', 'els => els.length > 1 ? els[1].innerText : ""')
            check('a new cell prints the kernel state: index 1, model adapted, map error', ok, out[-300:])
            check('no uncaught error in the page', not errors, '; '.join(errors[:3]))
            # scroll back to the explorer and take the screenshot
            page.evaluate("() => document.querySelector('.jp-OutputArea').scrollIntoView({block: 'start'})")
            page.wait_for_timeout(300)
            Path(args.screenshot).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.screenshot, full_page=False)
            print(f'screenshot: {args.screenshot}')
            ctx.close()
    finally:
        stop(proc); log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f'{check.passed} passed, {len(check.failed)} failed')
    return 0 if not check.failed else 1

if __name__ == '__main__':
    sys.exit(main())
