#!/usr/bin/env python
"""Smoke-test the docs site built by scripts/build_docs.py in headless Chromium.

Usage (from the repository root, after `python scripts/build_docs.py`):

    python scripts/check_site.py [--site _site] [--screenshot _site/screenshot.png] [--chromium /usr/bin/chromium]

Chromium is Debian's (`apt-get update && apt-get install -y chromium`), driven by the PyPI `playwright` package
through `executable_path` (no browser download). `_site/` is served on 127.0.0.1 by a local http.server thread.

What is checked (each line one check; the last line is `N passed, N failed`; exit status 1 on any failure):
- every notebook in nbs/ has a page: it loads with HTTP 200, its <h1> and <title> carry the notebook's title,
  it logs no console error, no page error and no failed or 4xx/5xx request, its images load, and every link
  inside the site resolves to a page and anchor that exist;
- every notebook in nbs/ is linked from the sidebar (the order of nbs/sidebar.yml), and each page marks itself
  as the active sidebar entry;
- every public name a notebook exports (`#| export` cells) has an API entry (a show_doc heading) on its page;
  the `core` page's `set_seed` entry shows its signature and its parameter table (seed, deterministic);
- clicking a sidebar link lands on that page; clicking "Next" on the landing page lands on the next page;
- the landing page has README.md's content (its description and every heading), and README.md is what
  nbs/index.ipynb gives (`scripts/build_docs.py --readme` made it);
- a screenshot of the `core` page (else the landing page) is written to --screenshot.
"""
from __future__ import annotations
import argparse, ast, functools, html, http.server, json, re, sys, tempfile, threading, time
from pathlib import Path
from urllib.parse import urlsplit, unquote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_docs as bd  # noqa: E402  (the same notebook list, page names and sidebar reading as the build)

CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync']

class Checks:
    "A list of named pass/fail results."
    def __init__(self): self.passed, self.failed = 0, []
    def __call__(self, name:str, ok:bool, detail:str=''):
        if ok: self.passed += 1; print(f'ok    {name}')
        else: self.failed.append(name); print(f'FAIL  {name}' + (f': {detail}' if detail else ''))
        return ok

def expected_title(nb_path:Path) -> str:
    "The title nbdev gives a notebook: `title:` of a raw YAML cell, else the first `# Title` of a markdown cell."
    from nbdev.frontmatter import _fm2dict, _md2dict
    nb = json.loads(nb_path.read_text())
    title = None
    for c in nb['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        if c['cell_type'] == 'raw': title = _fm2dict(src).get('title', title)
        elif c['cell_type'] == 'markdown' and title is None:
            sp = bd.split_title(src)
            if sp: title = _md2dict(sp[0]).get('title')
    return str(title or nb_path.stem)

_RE_DIR = re.compile(r'^\s*#\|\s*(.*)$')

def exported_names(nb_path:Path) -> list[str]:
    "Public functions and classes defined at the top level of the `#| export`/`#| exports` cells of a notebook."
    nb = json.loads(nb_path.read_text())
    names = []
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        dirs = set()
        for line in src.splitlines():
            m = _RE_DIR.match(line)
            if m: dirs |= set(re.split(r'[\s:]+', m.group(1).strip())[:1])
            elif line.strip(): break
        if not dirs & {'export', 'exports'} or dirs & {'hide'}: continue
        if re.search(r'^\s*#\|\s*include\s*:\s*false', src, re.M): continue
        try: tree = ast.parse(re.sub(r'^\s*%.*$', '', src, flags=re.M))
        except SyntaxError: continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and \
               (not node.name.startswith('_') or node.name.startswith('__')):
                names.append(node.name)
    return names

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass

def serve(site:Path):
    "Serve `site` on 127.0.0.1 (a free port) from a daemon thread; returns (server, base_url)."
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f'http://127.0.0.1:{srv.server_address[1]}/'

def ids_of(path:Path, cache={}) -> set:
    "The element ids of an HTML file of the site."
    if path not in cache: cache[path] = set(re.findall(r'\bid="([^"]+)"', path.read_text(errors='replace')))
    return cache[path]

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--site', default='_site', help='the built site (default _site)')
    ap.add_argument('--screenshot', default=None, help='PNG to write (default SITE/screenshot.png)')
    ap.add_argument('--chromium', default='/usr/bin/chromium', help='the Chromium executable (default /usr/bin/chromium)')
    args = ap.parse_args(argv)
    site = (ROOT/args.site).resolve()
    shot = Path(args.screenshot).resolve() if args.screenshot else site/'screenshot.png'
    if not (site/'index.html').exists():
        print(f'check_site: {site}/index.html is missing: run `python scripts/build_docs.py` first'); return 2
    if not Path(args.chromium).exists():
        print(f'check_site: no Chromium at {args.chromium}: `apt-get update && apt-get install -y chromium`'); return 2
    try: from playwright.sync_api import sync_playwright
    except ImportError:
        print('check_site: the `playwright` package is missing (pip install playwright; no browser download needed)'); return 2

    t0 = time.time()
    check = Checks()
    nbs = ROOT/'nbs'
    notebooks = bd.list_notebooks(nbs)
    expect = {p.name: dict(html=bd.html_name(p.name), title=expected_title(p), exports=exported_names(p)) for p in notebooks}
    sidebar_order = bd.sidebar_files(bd.read_sidebar(nbs/'sidebar.yml'))
    srv, base = serve(site)

    with tempfile.TemporaryDirectory(prefix='udabench-chromium-') as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=args.chromium, headless=True,
                                                    args=CHROMIUM_FLAGS, viewport={'width': 1400, 'height': 900})
        page = ctx.new_page()
        problems = []
        page.on('console', lambda m: problems.append(f'console {m.type}: {m.text}') if m.type == 'error' else None)
        page.on('pageerror', lambda e: problems.append(f'page error: {e}'))
        page.on('requestfailed', lambda r: problems.append(f'request failed: {r.url} ({r.failure})'))
        page.on('response', lambda r: problems.append(f'HTTP {r.status}: {r.url}') if r.status >= 400 else None)

        def visit(url):
            problems.clear()
            resp = page.goto(url, wait_until='load')
            return resp

        # ---- every notebook's page
        for name, e in expect.items():
            url = base + e['html']
            label = f'{name} -> {e["html"]}'
            if not (site/e['html']).exists():
                check(f'{label}: page built', False, f'{site.name}/{e["html"]} does not exist (see the build log)')
                continue
            resp = visit(url)
            check(f'{label}: loads (HTTP 200)', resp is not None and resp.status == 200, f'status {resp and resp.status}')
            h1 = page.inner_text('h1.title') if page.query_selector('h1.title') else ''
            title = page.title()
            check(f'{label}: title "{e["title"]}"', h1.strip() == e['title'] and title.startswith(e['title']),
                  f'h1 {h1!r}, <title> {title!r}')
            bad_imgs = page.eval_on_selector_all('img', 'els => els.filter(i => !(i.complete && i.naturalWidth > 0)).length')
            check(f'{label}: images load', bad_imgs == 0, f'{bad_imgs} image(s) did not load')
            hrefs = page.eval_on_selector_all('a[href]', 'els => els.map(a => a.getAttribute("href"))')
            broken = []
            for h in hrefs:
                if re.match(r'^[a-z][a-z0-9+.-]*:', h, re.I): continue  # external: never loaded by the page
                parts = urlsplit(h)
                target = site/unquote(parts.path) if parts.path else site/e['html']
                if not target.exists(): broken.append(h); continue
                if parts.fragment and target.suffix == '.html' and unquote(parts.fragment) not in ids_of(target): broken.append(h)
            check(f'{label}: links inside the site resolve', not broken, ', '.join(sorted(set(broken))[:10]))
            active = page.eval_on_selector_all('#sidebar a.active', 'els => els.map(a => a.getAttribute("href"))')
            check(f'{label}: listed in nbs/sidebar.yml and in the sidebar', name in sidebar_order and active == [e['html']],
                  'not listed in nbs/sidebar.yml' if name not in sidebar_order else f'active sidebar links {active}')
            if e['exports']:
                heads = set(page.eval_on_selector_all('.api-entry h3, .api-entry h2, .api-entry h4',
                                                      'els => els.map(h => h.firstChild ? h.firstChild.textContent.trim() : "")'))
                missing = [n for n in e['exports'] if not any(h == n or h.endswith('.' + n) for h in heads)]
                check(f'{label}: API entries for its {len(e["exports"])} exported name(s)', not missing,
                      f'no entry for {", ".join(missing)}')
            check(f'{label}: no console errors or failed requests', not problems, '; '.join(problems[:5]))

        # ---- API docs of core
        core = expect.get('00_core.ipynb')
        if core and (site/core['html']).exists():
            visit(base + core['html'])
            info = page.evaluate('''() => {
                const h = document.getElementById('set_seed'); if (!h) return null;
                const box = h.closest('.api-entry'); if (!box) return {box: false};
                const rows = [...box.querySelectorAll('table tbody tr')].map(r => [...r.cells].map(c => c.textContent.trim()));
                return {box: true, sig: (box.querySelector('.highlight') || {}).textContent || '', rows: rows,
                        doc: box.textContent};
            }''')
            ok = bool(info and info.get('box'))
            check('core: set_seed has an API entry', ok, 'no #set_seed heading inside an .api-entry')
            if ok:
                check('core: set_seed entry shows its signature', 'def set_seed(' in info['sig'] and 'deterministic:bool=False' in info['sig'],
                      repr(info['sig'][:200]))
                rows = {r[0]: r for r in info['rows'] if r}
                check('core: set_seed entry has a parameter table (seed: int; deterministic: bool = False)',
                      'seed' in rows and rows['seed'][1] == 'int' and 'deterministic' in rows
                      and rows['deterministic'][1:3] == ['bool', 'False'], repr(info['rows']))
        else: check('core: page exists', False, '00_core.ipynb or its page is missing')

        # ---- landing page: README content
        visit(base + 'index.html')
        readme = (ROOT/'README.md').read_text() if (ROOT/'README.md').exists() else ''
        try:
            check('README.md is what nbs/index.ipynb gives', readme == bd.readme_text(ROOT),
                  'run `python scripts/build_docs.py --readme`')
        except SystemExit as e: check('README.md is what nbs/index.ipynb gives', False, str(e))
        body = ' '.join(page.inner_text('main').split())
        heads = [re.sub(r'[`*_]', '', h).strip() for h in re.findall(r'^#{1,3}\s+(.+)$', re.sub(r'```.*?```', '', readme, flags=re.S), re.M)]
        desc = re.findall(r'^>\s+(.+)$', readme, re.M)
        page_heads = [' '.join(t.replace('#', '').split()) for t in page.eval_on_selector_all('h1, h2, h3', 'els => els.map(h => h.innerText)')]
        missing = [h for h in heads if ' '.join(h.split()) not in page_heads]
        check('landing page has README.md\'s headings', bool(heads) and not missing, f'missing {missing}' if heads else 'README.md has no headings')
        check('landing page has README.md\'s description', bool(desc) and ' '.join(desc[0].split()).replace('`', '') in body,
              repr(desc[:1]))
        check('landing page has no console errors', not problems, '; '.join(problems[:5]))

        # ---- navigation: a sidebar link, and "Next"
        links = page.eval_on_selector_all('#sidebar a[data-source]', 'els => els.map(a => [a.getAttribute("href"), a.dataset.source])')
        target = next((l for l in links if l[1] == '00_core.ipynb'), None) or next((l for l in links if l[0] != 'index.html'), None)
        if target:
            page.click(f'#sidebar a[href="{target[0]}"]')
            page.wait_for_load_state('load')
            landed = page.url.split('/')[-1].split('#')[0]
            h1 = page.inner_text('h1.title')
            want = expect.get(target[1], {}).get('title')
            check(f'clicking the sidebar link {target[0]} lands on it', landed == target[0] and h1.strip() == want,
                  f'landed on {landed} with title {h1!r}')
            active = page.eval_on_selector_all('#sidebar a.active', 'els => els.map(a => a.getAttribute("href"))')
            check('the landed page is highlighted in the sidebar', active == [target[0]], repr(active))
        else: check('the sidebar has links', False, 'no sidebar links on the landing page')
        visit(base + 'index.html')
        nxt = page.query_selector('.page-nav a.next')
        if nxt:
            href = nxt.get_attribute('href')
            nxt.click(); page.wait_for_load_state('load')
            check(f'"Next" on the landing page goes to {href}', page.url.split('/')[-1] == href and page.query_selector('h1.title') is not None,
                  page.url)
        else: check('"Next" link on the landing page', len(links) <= 1, 'no next link')

        # ---- screenshot
        shot_page = core['html'] if core and (site/core['html']).exists() else 'index.html'
        visit(base + shot_page)
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
        check(f'screenshot written ({shot_page})', shot.exists() and shot.stat().st_size > 10_000, str(shot))
        ctx.close()
    srv.shutdown()
    print(f'checked {len(expect)} page(s) in {time.time()-t0:.1f} s; screenshot: {shot}')
    print(f'{check.passed} passed, {len(check.failed)} failed')
    return 1 if check.failed else 0

if __name__ == '__main__':
    sys.exit(main())
