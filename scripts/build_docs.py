#!/usr/bin/env python
"""Build the udabench docs site into `_site/` without Quarto, and README.md from `nbs/index.ipynb`.

Usage (from the repository root, with the project's environment active):

    python scripts/build_docs.py                    # the site, into _site/
    python scripts/build_docs.py --execute all      # ... running every notebook for all of its outputs
    python scripts/build_docs.py --readme           # write README.md from nbs/index.ipynb
    python scripts/build_docs.py --readme --check   # exit 1 if README.md is not what nbs/index.ipynb gives

With Quarto installed, `nbdev_docs` stays the way to build the published site (`_quarto.yml`, `nbs/sidebar.yml`).
This script makes the same pages from the same nbdev processing, so that the docs can be built and checked here.

How a page is made
------------------
1. nbdev 2.4.14's own docs processing runs on the notebook (`nbdev.processors.FilterDefaults`, the pipeline that
   `nbdev.serve.proc_nbs` runs before Quarto, with IN_TEST=1 as there): the title and description come from `# Title`
   and `> description` (or a raw `---` YAML cell); `#| hide`, `#| export` and `#| default_exp` cells are removed;
   a `show_doc` cell is added after each exported definition and run, together with the cells that import things,
   so the API docs are rendered from the live objects of the package; names in backticks link to their docs.
   Three additions, all in this file: the text that follows `# Title` / `> description` in the same markdown cell
   is kept as a cell of its own (nbdev drops the whole cell); `show_doc` cells keep the order of the definitions
   (nbdev inserts them in reverse); each API entry gets a parameter table (name, type, default, details) under
   nbdev's signature block, built from the same docments (and classes read `class Name(`, `*args`/`**kwargs`
   as such, where fastcore writes `def Name(` and `args:VAR_POSITIONAL`).
2. The processed cells become HTML: markdown with mistune (the parser nbconvert uses) and Pygments; Quarto's cell
   options `echo`, `output` (`false`/`asis`), `include` and `code-fold` are honoured; Pandoc's link attributes and
   `:::` fenced divs are translated; `$...$`/`$$...$$` math is drawn by matplotlib's mathtext as SVG (the raw TeX is
   kept where mathtext cannot draw it); figures are embedded PNGs. No file is loaded from outside the site.
3. Each page is wrapped in one layout: the navbar of `_quarto.yml`, a left sidebar in the order of `nbs/sidebar.yml`
   (the current page highlighted), title and description, the content, an "on this page" list, previous/next links.
   `index.ipynb` is the landing page. Sidebar entries whose notebook does not exist yet are skipped with a warning;
   a notebook that is not in `nbs/sidebar.yml` still gets its page, with a warning (`scripts/check_site.py` fails
   on it, so the sidebar cannot fall behind the notebooks).

Which notebooks are executed
----------------------------
Committed notebooks carry no outputs (`nbdev_clean`). Running every notebook again for the docs would cost as much as
the test suite, and the API docs, the bulk of the site, need no execution beyond what nbdev runs for `show_doc`.
So, by default (`--execute auto`), a notebook is run in full, to show its printed results and figures, only when it
is a tutorial (its name contains `tutorial`, the `50_*` notebooks) or when its frontmatter asks for it with
`execute_docs: true` (a raw first cell `---`/`execute_docs: true`/`---`, or a line `- execute_docs: true` under the
title). A full run executes what `nbdev_test` executes: cells flagged with a `tst_flags` directive of settings.ini
(slow, gpu, realdata), `#| eval: false` cells and the closing `nbdev_export()` cell are skipped; `skip_exec: true`
in the frontmatter turns it off. `--execute all` runs every notebook, `--execute none` only nbdev's API-doc cells,
and `--execute NAME[,NAME]` adds the named notebooks to the default ones.

Speed and failures
------------------
Each notebook is processed in a fresh process forked from a server that has imported torch, matplotlib, IPython and
nbdev once (the package's registries must not carry over from one notebook to the next), `--jobs` at a time
(default: the number of CPUs, at most 4); about 1 s per notebook, plus the executed ones (on 2 cores, ~40 notebooks
take under a minute). A notebook may take `--timeout` seconds (default 600). Processed notebooks are cached in
`_proc/site_cache/`, keyed by the notebook, the package sources, settings.ini, this script and the execution choice
(`--force` ignores the cache). A notebook that fails makes the build exit with status 1 after the other pages are
written; its failing cell and error are printed. The usual cause is a cell that mixes an import with other code:
nbdev runs such cells for the API docs, without the cells before them.
"""
from __future__ import annotations
import argparse, base64, concurrent.futures as cf, hashlib, html, io, json, multiprocessing as mp, os, re, shutil
import ast, signal, sys, time, traceback, warnings
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE_VERSION = '1'

# --------------------------------------------------------------------------------------------------------------------
# Project settings
# --------------------------------------------------------------------------------------------------------------------

def read_settings(root:Path=ROOT) -> dict:
    "The [DEFAULT] section of settings.ini as a dict."
    cp = ConfigParser(interpolation=None)
    if not cp.read(root/'settings.ini'): raise SystemExit(f'build_docs: no settings.ini in {root}')
    return dict(cp['DEFAULT'])

def doc_url(settings:dict) -> str:
    "The published site's base URL, ending with '/'; nbdev's links to documented names start with it."
    return settings.get('doc_host', '').rstrip('/') + '/' + settings.get('doc_baseurl', '').strip('/') + '/'

def list_notebooks(nbs:Path) -> list[Path]:
    "The notebooks of the site: nbs/*.ipynb, without files or folders that start with '_' or '.' (as nbdev)."
    return sorted(p for p in nbs.glob('*.ipynb') if not p.name.startswith(('_', '.')))

def html_name(nb_name:str) -> str:
    "The page name nbdev/Quarto give a notebook: '00_core.ipynb' -> 'core.html' (nbdev's `_nbpath2html`)."
    from nbdev.doclinks import _nbpath2html
    return _nbpath2html(Path(nb_name)).name

# --------------------------------------------------------------------------------------------------------------------
# Sidebar (Quarto's sidebar.yml format)
# --------------------------------------------------------------------------------------------------------------------

def read_sidebar(path:Path) -> list:
    "The `website.sidebar.contents` list of a Quarto sidebar.yml, as (kind, text, target, children) tuples."
    import yaml
    if not path.exists(): raise SystemExit(f'build_docs: {path} is missing (the reading order of the site)')
    try: d = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e: raise SystemExit(f'build_docs: {path} is not valid YAML: {e}')
    sb = ((d or {}).get('website') or {}).get('sidebar')
    if isinstance(sb, list): sb = sb[0] if sb else {}
    contents = (sb or {}).get('contents')
    if not isinstance(contents, list): raise SystemExit(f'build_docs: {path} has no website.sidebar.contents list')
    def conv(items):
        res = []
        for it in items:
            if isinstance(it, str): res.append(('page', None, it, None))
            elif isinstance(it, dict) and 'section' in it:
                res.append(('section', str(it['section']), it.get('href'), conv(it.get('contents') or [])))
            elif isinstance(it, dict) and 'href' in it: res.append(('page', it.get('text'), it['href'], None))
            elif isinstance(it, dict) and 'text' in it: res.append(('text', str(it['text']), None, None))
            else: raise SystemExit(f'build_docs: {path}: cannot read sidebar entry {it!r}')
        return res
    return conv(contents)

def sidebar_files(entries) -> list[str]:
    "Every file named by the sidebar, in order."
    res = []
    for kind, _, target, children in entries:
        if target: res.append(target)
        if children: res += sidebar_files(children)
    return res

def prune_sidebar(entries, exists) -> list:
    "The sidebar without entries whose file does not exist (and without sections left empty)."
    res = []
    for kind, text, target, children in entries:
        if kind == 'section':
            ch = prune_sidebar(children, exists)
            tg = target if target and exists(target) else None
            if ch or tg: res.append((kind, text, tg, ch))
        elif kind == 'page':
            if exists(target): res.append((kind, text, target, None))
        else: res.append((kind, text, target, children))
    return res

# --------------------------------------------------------------------------------------------------------------------
# Notebook processing (runs in worker processes)
# --------------------------------------------------------------------------------------------------------------------

_WORKER = {}

# Heavy modules, imported once by the fork server; the package itself is not among them (see worker_context).
PRELOAD = ['numpy', 'torch', 'torchvision', 'matplotlib.pyplot', 'matplotlib_inline.backend_inline', 'IPython',
           'execnb.shell', 'nbdev.processors', 'nbdev.showdoc', 'mistune', 'pygments', 'yaml', 'build_docs']

def worker_context():
    """One fresh process per notebook, forked from a server that has imported the heavy modules once.
    A process that has run one notebook is not reused: the package's registries (METHODS, ...) and other module state
    of one notebook must not leak into the next, as they do not under nbdev_test."""
    if 'forkserver' not in mp.get_all_start_methods(): return mp.get_context('spawn')
    os.environ.setdefault('MPLBACKEND', 'Agg')  # no display here; the notebooks' shells switch to inline
    ctx = mp.get_context('forkserver')
    ctx.set_forkserver_preload(PRELOAD)
    return ctx

def _init_worker(root:str):
    "Set up a worker like nbdev's proc_nbs: notebooks run from nbs/ with IN_TEST=1."
    os.environ['IN_TEST'] = '1'
    os.environ.setdefault('MPLBACKEND', 'Agg')
    sys.path.insert(0, root)
    os.chdir(Path(root)/'nbs')
    _patch_show_doc()
    _WORKER['root'] = root

def _param_rows(r) -> list[tuple]:
    "(name, type, default, details) rows from a show_doc renderer's docments."
    import inspect
    from fastcore.docments import _fmt_default
    dm = getattr(getattr(r, 'dm', None), 'dm', None) or {}
    def fmt_anno(a):
        if a is inspect._empty or a is None: return ''
        if isinstance(a, str): return a
        return getattr(a, '__qualname__', None) or inspect.formatannotation(a)
    rows = []
    for k, v in dm.items():
        if k == 'return': continue
        anno, doc = v.get('anno', inspect._empty), v.get('docment') or ''
        if isinstance(anno, inspect._ParameterKind):
            if not doc: continue
            k, anno = ('*' if anno == inspect.Parameter.VAR_POSITIONAL else '**') + k, inspect._empty
        rows.append((k, fmt_anno(anno), _fmt_default(v.get('default', inspect._empty)), doc))
    ret = dm.get('return') or {}
    if rows and (ret.get('docment') or ret.get('anno', inspect._empty) is not inspect._empty):
        rows.append(('**Returns**', fmt_anno(ret.get('anno', inspect._empty)), '', ret.get('docment') or ''))
    return rows

def _md_cell(s) -> str: return str(s).replace('|', r'\|').replace('\n', ' ')

def _patch_show_doc():
    "Give nbdev's show_doc markdown a parameter table (type, default, details) under the signature block."
    from nbdev import showdoc
    cls = showdoc.BasicMarkdownRenderer
    if getattr(cls, '_udabench_table', False): return
    orig = cls._repr_markdown_
    def _repr_markdown_(self):
        md = orig(self)
        # fastcore writes `def Name(` for classes too, and `args:VAR_POSITIONAL` for *args
        md = re.sub(r'(\w+):VAR_POSITIONAL', r'*\1', re.sub(r'(\w+):VAR_KEYWORD', r'**\1', md))
        if isinstance(getattr(self, 'sym', None), type): md = re.sub(r'^def (?=\S+\()', 'class ', md, count=1, flags=re.M)
        try: rows = _param_rows(self)
        except Exception: rows = []
        if not rows: return md
        tbl = ['', '', '|  | **Type** | **Default** | **Details** |', '| -- | -------- | ----------- | ----------- |']
        for nm, ty, df, doc in rows:
            nm = nm if nm.startswith('**') else _md_cell(nm)
            ty = f'`{ty}`' if ty else ''
            df = f'`{df}`' if df else ''
            tbl.append(f'| {nm} | {_md_cell(ty)} | {_md_cell(df)} | {_md_cell(doc)} |')
        return md + '\n'.join(tbl)
    cls._repr_markdown_ = _repr_markdown_
    cls._udabench_table = True

_RE_H1 = re.compile(r'^#\s+\S.*$')
_RE_DESC = re.compile(r'^>\s+\S.*$')
_RE_FMLIST = re.compile(r'^-\s+\S.*:.*\S\s*$')

def split_title(src:str):
    "Split a markdown cell into its title block (`# Title`, `> description`, `- key: value` lines) and the rest."
    lines = src.splitlines()
    i = next((j for j, l in enumerate(lines) if _RE_H1.match(l)), None)
    if i is None: return None
    if any(l.strip() for l in lines[:i]): return None  # the title is not the first thing in the cell
    j = i + 1
    def skip_blank(j):
        while j < len(lines) and not lines[j].strip(): j += 1
        return j
    k = skip_blank(j)
    if k < len(lines) and _RE_DESC.match(lines[k]): j = k + 1
    while True:
        k = skip_blank(j)
        if k < len(lines) and _RE_FMLIST.match(lines[k]): j = k + 1
        else: break
    head, rest = '\n'.join(lines[:j]), '\n'.join(lines[j:]).strip('\n')
    return head, rest

def _doc_procs(nb_stem:str, mode:str, exec_names:set, tst_flags:set, readme:bool=False):
    "nbdev's doc processors, with this file's additions (see the module docstring)."
    from execnb.nbio import mk_cell
    from fastcore.basics import str2bool
    from fastcore.foundation import L
    from nbdev.process import Processor
    from nbdev.processors import (FilterDefaults, FrontmatterProc, add_show_docs, exec_show_docs, _want_doc,
                                  _def_names, _show_docs, _get_nm, cell_lang, add_links, insert_warning, NbCell)

    class split_title_cell(Processor):
        "Keep the text after `# Title`/`> description` when the title cell holds more (nbdev drops the whole cell)."
        def begin(self):
            for idx, cell in enumerate(self.nb.cells):
                if cell.cell_type == 'raw' and cell.source.strip().startswith('---'): continue
                if cell.cell_type != 'markdown': continue
                sp = split_title(cell.source)
                if sp is None or not sp[1].strip(): return
                cell.source = sp[0]
                new = mk_cell(sp[1], 'markdown')
                new.directives_ = {}
                self.nb.cells.insert(idx + 1, new)
                return

    class add_show_docs_in_order(add_show_docs):
        "nbdev's add_show_docs, with the show_doc cells in the order of the definitions."
        def begin(self):
            nb = self.nb
            exports = L(cell for cell in nb.cells if _want_doc(cell))
            trees = L(nb.cells).map(NbCell.parsed_).concat()
            shown_docs = {_get_nm(t) for t in _show_docs(trees)}
            for cell in reversed(exports):
                if cell_lang(cell) != 'python': raise ValueError(f"{cell.metadata.language} can't export:\n{cell.source}")
                for i, nm in enumerate(_def_names(cell, shown_docs)):
                    new_cell = mk_cell(f'show_doc({nm})')
                    new_cell.has_sd = True
                    nb.cells.insert(cell.idx_ + 1 + i, new_cell)
            nb.has_docs_ = shown_docs or exports

    class exec_docs(exec_show_docs):
        "nbdev's exec_show_docs; runs the whole notebook (as nbdev_test) when it is to be executed."
        def begin(self):
            fm = getattr(self.nb, 'frontmatter_', {}) or {}
            want = (mode == 'all' or nb_stem in exec_names
                    or (mode == 'auto' and ('tutorial' in nb_stem or str2bool(fm.get('execute_docs', False)))))
            self.full = want and mode != 'none' and not str2bool(fm.get('skip_exec', False))
            self.nb.executed_ = self.full
            super().begin()
            if self.full and hasattr(self, 'k'): self.nb.has_docs_ = True

        def __call__(self, cell):
            if not self.full: return self.api_cell(cell)
            if not hasattr(self, 'k') or cell.cell_type != 'code' or not cell.source: return
            if 'nbdev_export' + '()' in cell.source: return
            d = cell.directives_ or {}
            if set(d) & tst_flags: return
            if str(d.get('eval:', [''])[0]).lower() == 'false': return
            self.k.cell(cell)
            if self.k.exc:
                raise Exception(f'Error in cell {cell.idx_}:\n{cell.source}\n{self.k.exc!r}') from self.k.exc

        def api_cell(self, cell):
            "API-docs mode: nbdev's rule, except that flagged cells (slow, gpu, realdata) never run and a cell that mixes"
            " imports with other code runs only its imports (nbdev would run the whole cell out of its context)."
            d = cell.directives_ or {} if cell.cell_type == 'code' else {}
            if set(d) & tst_flags: return
            if cell.cell_type != 'code' or not cell.source or set(d) & {'export', 'exports', 'exporti', 'exec_doc'}:
                return super().__call__(cell)
            try: trees = cell.parsed_()
            except Exception: trees = None
            imps = [n for t in (trees or []) for n in ast.walk(t) if isinstance(n, (ast.Import, ast.ImportFrom))]
            others = [n for t in (trees or []) for n in (t.body if isinstance(t, ast.Module) else [t])
                      if not isinstance(n, (ast.Import, ast.ImportFrom))]
            if not imps or not others or _show_docs(trees or []): return super().__call__(cell)
            if not self.nb.has_docs_ or not hasattr(self, 'k'): return
            self.k.run_cell('\n'.join(ast.unparse(n) for n in imps))
            if self.k.exc: raise Exception(f'Error in the imports of cell {cell.idx_}:\n{cell.source}') from self.k.exc

    procs = list(FilterDefaults().procs())
    swap = {add_show_docs: add_show_docs_in_order, exec_show_docs: exec_docs}
    procs = [swap.get(p, p) for p in procs]
    procs.insert(procs.index(FrontmatterProc), split_title_cell)
    if readme: procs = [p for p in procs if p not in (exec_docs, add_links, insert_warning)]
    return procs

def process_notebook(path:str, mode:str, exec_names:tuple, tst_flags:tuple, timeout:int=0) -> dict:
    "Run the doc processors on one notebook; a JSON-ready dict with the processed notebook or the error."
    t0 = time.time()
    if timeout and hasattr(signal, 'SIGALRM'):  # each notebook has a process of its own (see worker_context)
        def _alarm(*_): raise TimeoutError(f'{Path(path).name} still runs after {timeout} s (see --timeout)')
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(timeout)
    from execnb.nbio import read_nb, nb2dict
    from nbdev.process import NBProcessor
    p = Path(path)
    res = dict(name=p.name, ok=False, seconds=0.0, warnings=[], executed=False)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        try:
            nb = None
            nb = read_nb(p)
            NBProcessor(nb=nb, procs=_doc_procs(p.stem, mode, set(exec_names), set(tst_flags))).process()
            d = nb2dict(nb)
            # the HTML body is rendered here too, so that pages (math drawing above all) render in parallel
            res.update(ok=True, fm=getattr(nb, 'frontmatter_', {}) or {}, executed=bool(getattr(nb, 'executed_', False)),
                       body=render_cells(d['cells'], _make_markdown({})))
        except BaseException as e:
            res['error'] = ''.join(traceback.format_exception(e)[-30:])
            if not getattr(nb, 'executed_', True) and 'Error in notebook' in res['error']:
                res['error'] += ('\n(nbdev runs, for the API docs, the cells that define exported names, that import '
                                 'something or that call show_doc, without the cells between them: keep imports in '
                                 'cells of their own.)')
    if timeout and hasattr(signal, 'SIGALRM'): signal.alarm(0)
    res['warnings'] = sorted({str(w.message).strip() for w in ws
                              if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))})
    res['seconds'] = round(time.time() - t0, 2)
    return json.loads(json.dumps(res, default=str))

# --------------------------------------------------------------------------------------------------------------------
# Markdown and cells to HTML
# --------------------------------------------------------------------------------------------------------------------

def pandoc_id(text:str) -> str:
    "Pandoc's auto identifier of a heading (what Quarto gives, and what nbdev's `#name` links point to)."
    s = html.unescape(re.sub(r'<[^>]+>', '', text)).lower()
    s = re.sub(r'[^\w\s.-]', '', s, flags=re.UNICODE)
    s = re.sub(r'\s+', '-', s.strip())
    s = re.sub(r'^[^a-z]+', '', s)
    return s or 'section'

def tex_for_mathtext(t:str) -> str:
    "Rewrite common TeX that matplotlib's mathtext lacks into forms it knows (\\tfrac, \\big, \\le, \\mathbb E, ...)."
    t = re.sub(r'\\[dt]frac', r'\\frac', t)
    t = re.sub(r'\\(?:big|Big|bigg|Bigg)[lr]?(?![a-zA-Z])\s*', '', t)
    t = re.sub(r'\\le(?![a-zA-Z])', r'\\leq', t)
    t = re.sub(r'\\ge(?![a-zA-Z])', r'\\geq', t)
    t = re.sub(r'\\\|', r'\\Vert ', t)
    t = re.sub(r'\\(mathbb|mathcal|mathrm|mathbf|mathit|mathsf|hat|tilde|bar|vec|dot|sqrt|widehat|widetilde|overline)'
               r'(?![a-zA-Z])\s*(\\[a-zA-Z]+|[A-Za-z0-9])', r'\\\1{\2}', t)
    t = re.sub(r'\\frac\s*([A-Za-z0-9])\s*([A-Za-z0-9])', r'\\frac{\1}{\2}', t)
    t = re.sub(r'\\frac\s*(\{[^{}]*\})\s*([A-Za-z0-9])', r'\\frac\1{\2}', t)
    t = re.sub(r'\\frac\s*([A-Za-z0-9])\s*(\{)', r'\\frac{\1}\2', t)
    return t

class MathSVG:
    "Draw TeX math with matplotlib's mathtext into an <img> with an SVG data URI; None where mathtext cannot."
    def __init__(self): self.cache = {}
    def __call__(self, tex:str, display:bool):
        key = (tex, display)
        if key not in self.cache: self.cache[key] = self._draw(tex, display)
        return self.cache[key]
    def _draw(self, tex, display):
        try:
            from matplotlib import mathtext
            from matplotlib.font_manager import FontProperties
            buf, size = io.BytesIO(), 13.0
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                depth = mathtext.math_to_image(f'${tex_for_mathtext(tex.strip())}$', buf, prop=FontProperties(size=size), format='svg')
            svg = buf.getvalue()
            m = re.search(rb'height="([\d.]+)pt"', svg)
            h = float(m.group(1)) if m else size
            uri = 'data:image/svg+xml;base64,' + base64.b64encode(svg).decode()
            style = f'height:{h/size:.2f}em' + ('' if display else f';vertical-align:-{float(depth)/size:.2f}em')
            cls = 'math display' if display else 'math inline'
            return f'<img class="{cls}" alt="{html.escape(tex.strip(), quote=True)}" src="{uri}" style="{style}">'
        except Exception:
            return None

_MATH = MathSVG()

def _make_markdown(ids:dict):
    "A mistune markdown function whose headings carry Pandoc ids, code is highlighted and math drawn."
    import mistune
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    class Renderer(mistune.HTMLRenderer):
        def heading(self, text, level, **attrs):
            base = attrs.get('id') or pandoc_id(text)
            n = ids.get(base, 0); ids[base] = n + 1
            hid = base if n == 0 else f'{base}-{n}'
            return f'<h{level} id="{hid}" class="anchored">{text}<a class="anchor" href="#{hid}" aria-label="link to this section">#</a></h{level}>\n'
        def block_code(self, code, info=None):
            lang = (info or '').split()[0] if info else ''
            return highlight_code(code, lang or 'text')
        def inline_math(self, text):
            return _MATH(text, False) or f'<code class="math">{html.escape(text)}</code>'
        def block_math(self, text):
            img = _MATH(text, True)
            return f'<div class="math-block">{img}</div>\n' if img else f'<pre class="math">{html.escape(text)}</pre>\n'

    return mistune.create_markdown(escape=False, renderer=Renderer(escape=False),
                                   plugins=['table', 'strikethrough', 'footnotes', 'url', 'math', 'task_lists'])

def highlight_code(code:str, lang:str='python') -> str:
    "Pygments-highlighted HTML of `code`."
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound
    try: lexer = get_lexer_by_name(lang)
    except ClassNotFound: lexer = get_lexer_by_name('text')
    return highlight(code.rstrip('\n'), lexer, HtmlFormatter(cssclass='highlight'))

_RE_LINK_ATTR = re.compile(r'\[([^\]\n]*)\]\(([^)\s]+)\)\{([^}\n]*)\}')
_RE_ATTR = re.compile(r'''([\w-]+)=("[^"]*"|'[^']*'|\S+)|\.([\w-]+)|#([\w-]+)''')
_RE_FENCE = re.compile(r'^(:{3,})\s*(\{[^}]*\}|[\w-]+)?\s*$')

def _attrs(spec:str) -> str:
    "HTML attributes from a Pandoc attribute list: {#id .class key=value}."
    classes, out = [], []
    for k, v, cls, hid in _RE_ATTR.findall(spec):
        if cls: classes.append(cls)
        elif hid: out.append(f'id="{html.escape(hid)}"')
        elif k: out.append(f'{k}="{html.escape(v.strip(chr(34)).strip(chr(39)), quote=True)}"')
    if classes: out.insert(0, f'class="{" ".join(classes)}"')
    return ' '.join(out)

def pandoc_to_html_md(src:str) -> str:
    "Translate the Pandoc extensions nbdev and Quarto notebooks use (link attributes, ::: divs) to HTML in markdown."
    src = _RE_LINK_ATTR.sub(lambda m: f'<a href="{html.escape(m.group(2), quote=True)}" {_attrs(m.group(3))}>{m.group(1)}</a>', src)
    out, depth, in_code = [], 0, False
    for line in src.split('\n'):
        if line.lstrip().startswith(('```', '~~~')): in_code = not in_code
        m = None if in_code else _RE_FENCE.match(line)
        if m and (m.group(2) or depth == 0):
            spec = (m.group(2) or '').strip('{}')
            attrs = _attrs(spec) if '{' in (m.group(2) or '') else (f'class="{spec}"' if spec else '')
            if spec and attrs and 'callout' in attrs: attrs = attrs.replace('class="', 'class="callout ', 1)
            out += ['', f'<div {attrs}>'.replace('<div >', '<div>'), '']; depth += 1
        elif m and depth:
            out += ['', '</div>', '']; depth -= 1
        else: out.append(line)
    out += ['', '</div>'] * depth
    return '\n'.join(out)

def _src(x) -> str: return ''.join(x) if isinstance(x, list) else (x or '')

_RE_QDIR = re.compile(r'^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')

def cell_options(source:str):
    "The Quarto options (`#| key: value`) left at the top of a processed code cell, and the code without them."
    opts, lines = {}, source.split('\n')
    i = 0
    while i < len(lines):
        m = _RE_QDIR.match(lines[i])
        if m: opts[m.group(1)] = m.group(2).strip('"\'')
        elif lines[i].strip(): break
        i += 1
    return opts, '\n'.join(lines[i:])

def _false(v) -> bool: return str(v).lower() == 'false'

def strip_ansi(s:str) -> str: return re.sub(r'\x1b\[[0-9;?]*[ -/]*[@-~]', '', s)

def render_output(o:dict, md, asis:bool) -> str:
    "HTML of one cell output."
    ot = o.get('output_type')
    if ot == 'stream':
        name = o.get('name', 'stdout')
        return f'<div class="cell-output cell-output-{name}"><pre>{html.escape(strip_ansi(_src(o.get("text"))))}</pre></div>'
    if ot == 'error':
        tb = strip_ansi('\n'.join(o.get('traceback') or [f"{o.get('ename')}: {o.get('evalue')}"]))
        return f'<div class="cell-output cell-output-error"><pre>{html.escape(tb)}</pre></div>'
    data = o.get('data') or {}
    if asis and 'text/markdown' in data: return md(pandoc_to_html_md(_src(data['text/markdown'])))
    if 'text/html' in data:
        return f'<div class="cell-output cell-output-display">{_src(data["text/html"])}</div>'
    if 'image/svg+xml' in data:
        return f'<div class="cell-output cell-output-display">{_src(data["image/svg+xml"])}</div>'
    for mime in ('image/png', 'image/jpeg', 'image/gif'):
        if mime in data:
            meta = (o.get('metadata') or {}).get(mime) or {}
            size = ''.join(f' {k}="{int(meta[k])}"' for k in ('width', 'height') if isinstance(meta.get(k), (int, float)))
            b64 = _src(data[mime]).replace('\n', '')
            return f'<div class="cell-output cell-output-display"><img class="figure" src="data:{mime};base64,{b64}"{size} alt="figure"></div>'
    if 'text/markdown' in data:
        return f'<div class="cell-output cell-output-display">{md(pandoc_to_html_md(_src(data["text/markdown"])))}</div>'
    if 'text/latex' in data:
        return f'<div class="cell-output cell-output-display"><pre>{html.escape(_src(data["text/latex"]))}</pre></div>'
    if 'text/plain' in data:
        return f'<div class="cell-output cell-output-display"><pre>{html.escape(strip_ansi(_src(data["text/plain"])))}</pre></div>'
    return ''

def render_cells(cells:list, md) -> str:
    "HTML of a processed notebook's cells."
    out = []
    for c in cells:
        src = _src(c.get('source'))
        if c['cell_type'] == 'markdown':
            if src.strip(): out.append(f'<div class="cell cell-markdown">{md(pandoc_to_html_md(src))}</div>')
        elif c['cell_type'] == 'raw':
            continue  # the frontmatter cell (already read) and raw cells meant for other formats
        elif c['cell_type'] == 'code':
            opts, code = cell_options(src)
            if _false(opts.get('include')): continue
            is_doc = bool(re.match(r'^show_doc\(', code.strip()))
            asis = opts.get('output') == 'asis'
            parts = []
            if code.strip() and not _false(opts.get('echo')):
                lang = ((c.get('metadata') or {}).get('language') or 'python')
                block = f'<div class="cell-code">{highlight_code(code, lang)}</div>'
                fold = opts.get('code-fold')
                if fold and not _false(fold):
                    summary = html.escape(opts.get('code-summary') or 'Code')
                    block = f'<details class="code-fold"{" open" if fold == "show" else ""}><summary>{summary}</summary>{block}</details>'
                parts.append(block)
            if not _false(opts.get('output')):
                parts += [render_output(o, md, asis) for o in c.get('outputs') or []]
            parts = [p for p in parts if p]
            if not parts: continue
            cls = 'cell api-entry' if is_doc else 'cell cell-code-wrap'
            out.append(f'<div class="{cls}">' + '\n'.join(parts) + '</div>')
    return '\n'.join(out)

# --------------------------------------------------------------------------------------------------------------------
# The site
# --------------------------------------------------------------------------------------------------------------------

SITE_CSS = r"""
:root { --primary:#2780e3; --text:#343a40; --muted:#6c757d; --border:#dee2e6; --code-bg:#f6f8fa; --side-w:270px; }
* { box-sizing: border-box; }
html { scroll-padding-top: 70px; }
body { margin:0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--text); line-height: 1.55; font-size: 16px; background: #fff; }
a { color: var(--primary); text-decoration: none; } a:hover { text-decoration: underline; }
.navbar { position: sticky; top: 0; z-index: 10; height: 56px; display: flex; align-items: center; gap: 1.4rem;
  padding: 0 1.2rem; background: var(--primary); color: #fff; box-shadow: 0 1px 3px rgba(0,0,0,.15); }
.navbar a { color: rgba(255,255,255,.9); } .navbar a:hover { color: #fff; text-decoration: none; }
.navbar .brand { font-weight: 600; font-size: 1.25rem; color: #fff; }
.navbar .nav-right { margin-left: auto; }
.layout { display: flex; align-items: flex-start; max-width: 1500px; margin: 0 auto; }
.sidebar { position: sticky; top: 56px; width: var(--side-w); flex: 0 0 var(--side-w); height: calc(100vh - 56px);
  overflow-y: auto; padding: 1.2rem 1rem 2rem 1.2rem; border-right: 1px solid var(--border); font-size: .92rem; }
.sidebar ul { list-style: none; margin: 0; padding: 0; }
.sidebar li a { display: block; padding: .18rem .6rem; border-radius: 4px; color: var(--text); }
.sidebar li a:hover { background: #eef4fc; text-decoration: none; }
.sidebar li a.active { background: #e3eefb; color: var(--primary); font-weight: 600; }
.sidebar .section { margin-top: .9rem; }
.sidebar .section-title { font-weight: 600; text-transform: uppercase; font-size: .74rem; letter-spacing: .05em;
  color: var(--muted); padding: .15rem .6rem; }
.sidebar .section .section { margin-left: .6rem; }
.content { flex: 1 1 auto; min-width: 0; max-width: 900px; padding: 1.5rem 2.5rem 3rem 2.5rem; }
.toc { position: sticky; top: 56px; flex: 0 0 220px; padding: 1.6rem 1rem; font-size: .85rem; max-height: calc(100vh - 56px); overflow-y: auto; }
.toc .toc-title { font-weight: 600; margin-bottom: .4rem; }
.toc ul { list-style: none; padding-left: .6rem; margin: 0; border-left: 1px solid var(--border); }
.toc li a { color: var(--muted); display: block; padding: .1rem 0; }
.page-header { margin-bottom: 1.5rem; border-bottom: 1px solid var(--border); padding-bottom: .8rem; }
h1.title { font-size: 2.2rem; margin: .3rem 0 .2rem 0; font-weight: 600; }
.page-header p.description { padding-left: 2px; padding-top: 5px; font-style: italic; font-size: 1.2rem; color: var(--muted); margin: 0; }
h2 { font-size: 1.6rem; margin-top: 2.2rem; border-bottom: 1px solid var(--border); padding-bottom: .25rem; font-weight: 600; }
h3 { font-size: 1.3rem; margin-top: 1.6rem; font-weight: 600; } h4 { font-size: 1.1rem; }
.anchor { visibility: hidden; margin-left: .35rem; color: var(--muted); font-weight: 400; font-size: .8em; }
h1:hover .anchor, h2:hover .anchor, h3:hover .anchor, h4:hover .anchor { visibility: visible; }
code { font-family: SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: .88em; color: #9753b8; }
a code { color: inherit; }
pre { font-family: SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: .86rem; }
.highlight { background: var(--code-bg); border-radius: 5px; margin: .4rem 0; }
.highlight pre { margin: 0; padding: .7rem .9rem; overflow-x: auto; background: transparent; }
.cell-output pre { margin: 0 0 .4rem .8rem; padding: .4rem .8rem; border-left: 2px solid lightsalmon; overflow-x: auto; white-space: pre-wrap; }
.cell-output-stderr pre { color: #7a5b00; background: #fffbea; }
.cell-output-error pre { color: #a4161a; background: #fff0f0; border-left-color: #a4161a; }
.cell-output img.figure { max-width: 100%; height: auto; display: block; margin: .4rem 0; }
.cell { margin-bottom: 1rem; }
details.code-fold > summary { cursor: pointer; color: var(--muted); font-size: .9rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .92rem; }
th, td { border-bottom: 1px solid var(--border); padding: .35rem .7rem; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #adb5bd; }
blockquote { margin: .8rem 0; padding: .2rem 1rem; border-left: 4px solid var(--border); color: var(--muted); }
.api-entry { border: 1px solid var(--border); border-radius: 6px; padding: .2rem 1.1rem .6rem 1.1rem;
  margin: 1.4rem 0 1.2rem 0; box-shadow: 0 1px 2px rgba(0,0,0,.05); }
.api-entry > hr:first-child { display: none; }
.api-entry h3 { margin-top: .7rem; font-family: SFMono-Regular, Menlo, Consolas, monospace; font-size: 1.15rem; }
.api-entry a[target="_blank"] { float: right; font-size: smaller; margin-top: .9rem; }
.api-entry table { width: 100%; }
.api-entry td:first-child { font-family: SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em; white-space: nowrap; }
img.math.display { display: block; margin: .8rem auto; }
.math-block { text-align: center; overflow-x: auto; }
.callout { border-left: 4px solid var(--primary); background: #f3f8fe; padding: .4rem 1rem; margin: 1rem 0; border-radius: 3px; }
.callout-warning, .callout-important { border-left-color: #ff7518; background: #fff6ee; }
.page-nav { display: flex; justify-content: space-between; gap: 1rem; margin-top: 3rem; padding-top: 1rem; border-top: 1px solid var(--border); }
.page-nav a { display: block; padding: .6rem 1rem; border: 1px solid var(--border); border-radius: 6px; max-width: 48%; }
.page-nav a.next { margin-left: auto; text-align: right; }
.page-nav .dir { display: block; font-size: .78rem; color: var(--muted); }
@media (max-width: 1200px) { .toc { display: none; } }
@media (max-width: 800px) { .layout { display: block; } .sidebar { position: static; width: auto; height: auto; border-right: 0;
  border-bottom: 1px solid var(--border); } .content { padding: 1rem; } }
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="udabench scripts/build_docs.py (nbdev {nbdev_version})">
<title>{page_title}</title>
<meta name="description" content="{meta_desc}">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="site.css">
<link rel="stylesheet" href="pygments.css">
{extra_css}
</head>
<body data-page="{page}" data-source="{source}">
<header class="navbar">
<a class="brand" href="index.html">{site_title}</a>
{navbar}
</header>
<div class="layout">
<nav class="sidebar" id="sidebar" aria-label="Site navigation">
{sidebar}
</nav>
<main class="content" id="content">
<header class="page-header" id="title-block-header">
<h1 class="title">{title}</h1>
{description}
</header>
{body}
{pagenav}
</main>
<aside class="toc" id="toc">{toc}</aside>
</div>
</body>
</html>
"""

def render_sidebar(entries, pages:dict, active:str) -> str:
    "The sidebar's HTML: sections and links, the active page marked."
    def link(target, text):
        info = pages.get(target)
        if info is None: return ''
        cls = ' class="active" aria-current="page"' if info['html'] == active else ''
        label = html.escape(text or info['title'])
        return f'<li><a href="{info["html"]}"{cls} data-source="{html.escape(target)}">{label}</a></li>'
    def walk(items):
        res = []
        for kind, text, target, children in items:
            if kind == 'page': res.append(link(target, text))
            elif kind == 'text': res.append(f'<li class="sidebar-text">{html.escape(text)}</li>')
            else:
                head = (f'<div class="section-title"><a href="{pages[target]["html"]}">{html.escape(text)}</a></div>'
                        if target else f'<div class="section-title">{html.escape(text)}</div>')
                res.append(f'<li class="section">{head}<ul>{"".join(walk(children))}</ul></li>')
        return res
    return f'<ul class="sidebar-top">{"".join(walk(entries))}</ul>'

def render_navbar(quarto:dict, pages_by_html:dict, warn) -> str:
    "The navbar links of _quarto.yml (website.navbar.left/right) that resolve to a page of the site."
    nav = ((quarto.get('website') or {}).get('navbar') or {})
    res = []
    for side in ('left', 'right'):
        items = []
        for it in nav.get(side) or []:
            if not isinstance(it, dict) or 'href' not in it: continue
            href = str(it['href'])
            if href.startswith(('http://', 'https://')): items.append(f'<a href="{html.escape(href)}">{html.escape(str(it.get("text", href)))}</a>')
                # external links are written, never loaded by the page
            else:
                name = html_name(href) if href.endswith('.ipynb') else href
                if name in pages_by_html: items.append(f'<a href="{name}">{html.escape(str(it.get("text", name)))}</a>')
                else: warn(f'_quarto.yml navbar: {href} is not a page of the site (yet); link left out')
        if items: res.append(f'<nav class="nav-{side}">' + ' '.join(items) + '</nav>')
    return '\n'.join(res)

def relink(body:str, base_url:str, nb_to_html:dict) -> str:
    "Point nbdev's absolute doc links and links to notebooks at the pages of this site."
    if base_url: body = body.replace(f'href="{base_url}', 'href="')
    def fix(m):
        target, anchor = m.group(1), m.group(2) or ''
        name = Path(target).name
        return f'href="{nb_to_html.get(name, html_name(name))}{anchor}"'
    return re.sub(r'href="(?![a-z]+:)([^"#]+?\.ipynb)(#[^"]*)?"', fix, body)

def fix_anchors(body:str, page:str, page_ids:dict) -> str:
    """Links to a name with no entry of its own (nbdev links `Class.method` to `#class.method` even when only the
    class is documented) go to the closest documented parent (`#class`), else to the top of the page."""
    def fix(m):
        target, frag = m.group(1), m.group(2)
        ids = page_ids.get(target or page)
        if ids is None or frag in ids: return m.group(0)
        parts = frag.split('.')
        while len(parts) > 1:
            parts.pop()
            if '.'.join(parts) in ids: return f'href="{target}#{".".join(parts)}"'
        return f'href="{target or page}"'
    return re.sub(r'href="([^":#]*)#([^"]+)"', fix, body)

def build_site(args) -> int:
    t0 = time.time()
    root, out = ROOT, (ROOT/args.out).resolve()
    nbs = root/'nbs'
    settings = read_settings(root)
    tst_flags = tuple(settings.get('tst_flags', '').split())
    msgs = []
    def warn(m): msgs.append(m); print(f'warning: {m}', file=sys.stderr)

    notebooks = list_notebooks(nbs)
    names = {p.name for p in notebooks}
    entries = read_sidebar(nbs/'sidebar.yml')
    listed = sidebar_files(entries)
    for f in listed:
        if f not in names and not (nbs/f).exists(): warn(f'nbs/sidebar.yml lists {f}, which does not exist yet: skipped')
    for n in sorted(names - set(listed)):
        warn(f'{n} is not in nbs/sidebar.yml: its page is built but not in the navigation')
    if args.only:
        wanted = {w if w.endswith('.ipynb') else w + '.ipynb' for w in args.only}
        notebooks = [p for p in notebooks if p.name in wanted]

    mode, exec_names = args.execute, ()
    if mode not in ('auto', 'all', 'none'):
        exec_names = tuple(re.sub(r'\.ipynb$', '', Path(x.strip()).name) for x in mode.split(',') if x.strip()); mode = 'auto'

    # ---- process (cache, then worker processes)
    cache_dir = root/'_proc'/'site_cache'
    cache_dir.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256(CACHE_VERSION.encode())
    for f in sorted((root/settings.get('lib_path', 'udabench')).rglob('*.py')):
        h.update(str(f.relative_to(root)).encode()); h.update(f.read_bytes())
    for f in (root/'settings.ini', Path(__file__).resolve()): h.update(f.read_bytes())
    base_key = h.hexdigest()
    results, todo = {}, []
    for p in notebooks:
        key = hashlib.sha256((base_key + mode + str(p.stem in exec_names)).encode() + p.read_bytes()).hexdigest()[:32]
        cf_ = cache_dir/f'{p.stem}.{key}.json'
        if cf_.exists() and not args.force:
            try: results[p.name] = dict(json.loads(cf_.read_text()), cached=True); continue
            except ValueError: pass
        todo.append((p, cf_))
    # likely-long notebooks first, so the workers finish together
    todo.sort(key=lambda t: (mode != 'all' and 'tutorial' not in t[0].stem and t[0].stem not in exec_names, t[0].name))
    jobs = max(1, min(args.jobs or min(os.cpu_count() or 1, 4), len(todo) or 1))
    if todo:
        # The workers' IPython shells replace sys.modules['__main__']: hand them functions of an importable module.
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import build_docs as bd
        print(f'processing {len(todo)} notebook(s) with {jobs} worker(s) ({len(results)} from cache)...', flush=True)
        with cf.ProcessPoolExecutor(jobs, mp_context=worker_context(), initializer=bd._init_worker,
                                    initargs=(str(root),), max_tasks_per_child=1) as ex:
            futs = {ex.submit(bd.process_notebook, str(p), mode, exec_names, tst_flags, args.timeout): (p, c) for p, c in todo}
            for fut in cf.as_completed(futs):
                p, c = futs[fut]
                try: r = fut.result()
                except Exception as e: r = dict(name=p.name, ok=False, error=f'worker died: {e!r}', warnings=[], seconds=0)
                results[p.name] = r
                tag = 'ok' if r['ok'] else 'FAILED'
                print(f'  {p.name}: {tag} ({r["seconds"]:.1f} s{", executed" if r.get("executed") else ""})', flush=True)
                if r['ok']:
                    tmp = c.with_suffix('.tmp'); tmp.write_text(json.dumps(r)); tmp.replace(c)
                    for old in cache_dir.glob(f'{p.stem}.*.json'):
                        if old != c: old.unlink(missing_ok=True)
    for n, r in sorted(results.items()):
        for w in r.get('warnings') or []:
            lines = w.splitlines()
            if len(lines) > 6: lines = lines[:6] + [f'... ({len(lines) - 6} more lines)']
            warn(f'{n}: ' + '\n    '.join(lines))
    t_proc = time.time() - t0
    failed = {n: r for n, r in results.items() if not r['ok']}
    for n, r in sorted(failed.items()): print(f'\nERROR: {n} could not be processed:\n{r.get("error")}', file=sys.stderr)

    # ---- pages
    pages = {}
    for p in notebooks:
        r = results.get(p.name)
        if not r or not r['ok']: continue
        fm = r.get('fm') or {}
        pages[p.name] = dict(html=fm.get('output-file') or html_name(p.name), title=str(fm.get('title') or p.stem),
                             description=str(fm.get('description') or ''), body=r['body'], executed=r.get('executed'))
    nb_to_html = {p.name: html_name(p.name) for p in list_notebooks(nbs)}
    by_html = {v['html']: k for k, v in pages.items()}
    nav_entries = prune_sidebar(entries, lambda t: t in pages)
    order = [t for t in sidebar_files(nav_entries) if t in pages]
    import yaml
    quarto = yaml.safe_load((root/'_quarto.yml').read_text()) if (root/'_quarto.yml').exists() else {}
    site_title = ((quarto or {}).get('website') or {}).get('title') or settings.get('title', 'udabench')
    navbar = render_navbar(quarto or {}, by_html, warn)
    git_url = settings.get('git_url', '')
    if git_url: navbar += f'\n<nav class="nav-right"><a href="{html.escape(git_url)}">Source</a></nav>'
    import nbdev

    if out.exists() and not args.only:
        for f in out.iterdir():
            if f.is_dir(): shutil.rmtree(f)
            else: f.unlink()
    out.mkdir(parents=True, exist_ok=True)
    base_url = doc_url(settings)
    bodies = {}
    for name, info in pages.items(): bodies[name] = relink(info['body'], base_url, nb_to_html)
    page_ids = {info['html']: set(re.findall(r'\bid="([^"]+)"', bodies[n])) | {'title-block-header'} for n, info in pages.items()}
    for name, info in pages.items():
        md = _make_markdown({})
        body = fix_anchors(bodies[name], info['html'], page_ids)
        toc_items = re.findall(r'<h2 id="([^"]+)"[^>]*>(.*?)<a class="anchor"', body)
        toc = ('<div class="toc-title">On this page</div><ul>' + ''.join(
            f'<li><a href="#{i}">{re.sub(r"<[^>]+>", "", t)}</a></li>' for i, t in toc_items) + '</ul>') if toc_items else ''
        pagenav = ''
        if name in order:
            i = order.index(name)
            prev = pages[order[i-1]] if i > 0 else None
            nxt = pages[order[i+1]] if i + 1 < len(order) else None
            pagenav = '<nav class="page-nav" aria-label="Previous and next pages">' + (
                f'<a class="prev" rel="prev" href="{prev["html"]}"><span class="dir">← Previous</span>{html.escape(prev["title"])}</a>' if prev else '') + (
                f'<a class="next" rel="next" href="{nxt["html"]}"><span class="dir">Next →</span>{html.escape(nxt["title"])}</a>' if nxt else '') + '</nav>'
        desc = md(pandoc_to_html_md(info['description'])).strip() if info['description'] else ''
        desc_html = re.sub(r'^<p>', '<p class="description">', desc) if desc else ''
        title_html = re.sub(r'^<p>(.*)</p>$', r'\1', md(info['title']).strip(), flags=re.S)
        plain_title = html.unescape(re.sub(r'<[^>]+>', '', title_html))
        page_title = plain_title if info['html'] == 'index.html' and plain_title == site_title else f'{plain_title} – {site_title}'
        doc = PAGE.format(
            nbdev_version=nbdev.__version__, page_title=html.escape(page_title), site_title=html.escape(site_title),
            meta_desc=html.escape(info['description'], quote=True), page=html.escape(info['html']), source=html.escape(name),
            extra_css='<link rel="stylesheet" href="styles.css">' if (nbs/'styles.css').exists() else '',
            navbar=navbar, sidebar=render_sidebar(nav_entries, pages, info['html']), title=title_html,
            description=desc_html, body=body, pagenav=pagenav, toc=toc)
        (out/info['html']).write_text(doc, encoding='utf-8')

    # ---- assets
    from pygments.formatters import HtmlFormatter
    (out/'site.css').write_text(SITE_CSS.lstrip())
    (out/'pygments.css').write_text(HtmlFormatter(style='default').get_style_defs('.highlight'))
    if (nbs/'styles.css').exists(): shutil.copy2(nbs/'styles.css', out/'styles.css')
    for f in nbs.rglob('*'):
        rel = f.relative_to(nbs)
        if f.is_file() and f.suffix.lower() in ('.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp') \
           and not any(part.startswith(('_', '.')) for part in rel.parts):
            (out/rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, out/rel)
    (out/'.nojekyll').write_text('')
    manifest = dict(pages={n: dict(html=v['html'], title=v['title'], executed=bool(v['executed'])) for n, v in pages.items()},
                    sidebar=order, failed=sorted(failed), warnings=msgs)
    (out/'site.json').write_text(json.dumps(manifest, indent=1))

    n_exec = sum(1 for v in pages.values() if v['executed'])
    print(f'built {len(pages)} page(s) into {out.relative_to(root) if out.is_relative_to(root) else out} '
          f'in {time.time()-t0:.1f} s ({n_exec} executed, {sum(1 for r in results.values() if r.get("cached"))} from cache, '
          f'{len(msgs)} warning(s), {len(failed)} failed; processing {t_proc:.1f} s, pages {time.time()-t0-t_proc:.1f} s)')
    return 1 if failed else 0

# --------------------------------------------------------------------------------------------------------------------
# README.md from nbs/index.ipynb
# --------------------------------------------------------------------------------------------------------------------

README_NOTE = '<!-- WARNING: THIS FILE WAS AUTOGENERATED FROM nbs/index.ipynb BY scripts/build_docs.py --readme! DO NOT EDIT! -->'

def readme_text(root:Path=ROOT) -> str:
    """README.md's text from nbs/index.ipynb: nbdev's processing without execution or doc links (so the result
    depends on index.ipynb alone); hidden cells dropped, code cells as ```python blocks with their saved outputs."""
    from execnb.nbio import read_nb
    from nbdev.process import NBProcessor
    settings = read_settings(root)
    nb_path = root/'nbs'/settings.get('readme_nb', 'index.ipynb')
    if not nb_path.exists(): raise SystemExit(f'build_docs: {nb_path} is missing')
    nb = read_nb(nb_path)
    NBProcessor(nb=nb, procs=_doc_procs(nb_path.stem, 'none', set(), set(), readme=True)).process()
    fm = getattr(nb, 'frontmatter_', {}) or {}
    base = doc_url(settings)
    def links(s):  # links to notebooks point at the published pages
        return re.sub(r'\]\((?![a-z]+:)([^)#\s]+?\.ipynb)(#[^)\s]*)?\)',
                      lambda m: f']({base}{html_name(Path(m.group(1)).name)}{m.group(2) or ""})', s)
    parts = [f'# {fm.get("title", settings.get("title", ""))}', README_NOTE]
    if fm.get('description'): parts.append(f'> {fm["description"]}')
    for c in nb.cells:
        src = _src(c.get('source'))
        if c.cell_type == 'markdown':
            if src.strip() and not src.startswith('<!-- WARNING'): parts.append(links(src.strip()))
        elif c.cell_type == 'code':
            opts, code = cell_options(src)
            if _false(opts.get('include')): continue
            if code.strip() and not _false(opts.get('echo')): parts.append(f'```python\n{code.strip()}\n```')
            if _false(opts.get('output')): continue
            for o in c.get('outputs') or []:
                if o.get('output_type') == 'stream': parts.append(f'```\n{strip_ansi(_src(o.get("text"))).rstrip()}\n```')
                elif o.get('output_type') in ('execute_result', 'display_data'):
                    d = o.get('data') or {}
                    if 'text/markdown' in d: parts.append(_src(d['text/markdown']).strip())
                    elif 'text/html' in d: parts.append(_src(d['text/html']).strip())
                    elif 'text/plain' in d and not any(k.startswith('image/') for k in d):
                        parts.append(f'```\n{strip_ansi(_src(d["text/plain"])).rstrip()}\n```')
    return '\n\n'.join(p for p in parts if p) + '\n'

def build_readme(args) -> int:
    text = readme_text(ROOT)
    dest = ROOT/'README.md'
    if args.check:
        cur = dest.read_text() if dest.exists() else ''
        if cur == text: print('README.md matches nbs/index.ipynb'); return 0
        import difflib
        sys.stdout.writelines(difflib.unified_diff(cur.splitlines(True), text.splitlines(True), 'README.md', 'from nbs/index.ipynb'))
        print('README.md does not match nbs/index.ipynb: run `python scripts/build_docs.py --readme`', file=sys.stderr)
        return 1
    dest.write_text(text)
    print(f'wrote README.md from nbs/index.ipynb ({len(text.splitlines())} lines)')
    return 0

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description='Build the docs site into _site/ (no Quarto), or README.md (--readme).')
    ap.add_argument('--out', default='_site', help='output folder, relative to the repository root (default _site)')
    ap.add_argument('--execute', default='auto', metavar='MODE',
                    help="auto (tutorials and notebooks with `execute_docs: true`), all, none, or NAME[,NAME] "
                         "to run these notebooks too (default auto)")
    ap.add_argument('--jobs', type=int, default=0, help='worker processes (default: CPUs, at most 4)')
    ap.add_argument('--timeout', type=int, default=600, help='seconds one notebook may take (default 600; 0: no limit)')
    ap.add_argument('--force', action='store_true', help='ignore the cache of processed notebooks')
    ap.add_argument('--only', nargs='+', metavar='NB', help='process only these notebooks (for a quick look; '
                    'the navigation then lists only them)')
    ap.add_argument('--readme', action='store_true', help='write README.md from nbs/index.ipynb instead')
    ap.add_argument('--check', action='store_true', help='with --readme: only compare, exit 1 when README.md differs')
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    if args.readme: return build_readme(args)
    if args.check: ap.error('--check goes with --readme')
    return build_site(args)

if __name__ == '__main__':
    sys.exit(main())
