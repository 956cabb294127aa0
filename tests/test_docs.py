"""The documentation site: `mkdocs build --strict` passes, every guide is built with its figure,
and every ```python snippet of docs/ runs (so the site cannot rot).

A snippet that must not run (a shell command, code that needs a cluster) is fenced ```bash or
```text instead of ```python.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDES = sorted((DOCS / "guides").glob("*.md"))
FENCE = re.compile(r"^([ \t]*)```python[ \t]*\n(.*?)^\1```[ \t]*$", re.S | re.M)
# extras a page's snippets need beyond the core dependencies (skipped with a reason without them)
NEEDS = {"tensorboard.md": ["tensorboard"]}


def snippets():
    for page in sorted(DOCS.rglob("*.md")):
        for k, m in enumerate(FENCE.finditer(page.read_text(encoding="utf-8"))):
            indent = m.group(1)
            code = "".join(line[len(indent):] if line.startswith(indent) else line
                           for line in m.group(2).splitlines(keepends=True))
            rel = page.relative_to(DOCS).as_posix()
            yield pytest.param(rel, code, id=f"{rel}#{k}")


def _env(**extra):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]), **extra)
    return env


def test_the_guides_and_snippets_are_there():
    names = {p.stem for p in GUIDES}
    assert {"backprop", "activations", "regularization", "cnn", "rnn", "optimizers",
            "second-order", "training-craft", "parameter-server"} <= names
    for page in GUIDES:
        text = page.read_text(encoding="utf-8")
        assert FENCE.search(text), f"{page.name} has no ```python snippet"
        assert re.search(r"!\[[^\]]*\]\(\.\./figures/\w+\.png\)", text), f"{page.name} has no figure"
        assert re.search(r"\[tidu\.[\w.]+\]\[\]", text), f"{page.name} links nothing into the API reference"


@pytest.mark.parametrize("page, code", list(snippets()))
def test_snippet_runs(page, code, tmp_path):
    for module in NEEDS.get(Path(page).name, []):
        pytest.importorskip(module, reason=f"the snippet of docs/{page} needs {module}")
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, f"docs/{page} snippet failed:\n{code}\n--- stderr ---\n{r.stderr[-3000:]}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="the docs build needs mkdocs (pip install '.[docs]')")
    pytest.importorskip("material", reason="the docs build needs mkdocs-material (pip install '.[docs]')")
    pytest.importorskip("mkdocstrings_handlers.python",
                        reason="the docs build needs mkdocstrings-python (pip install '.[docs]')")
    pytest.importorskip("matplotlib", reason="the docs figures need matplotlib")
    out = tmp_path_factory.mktemp("site")
    figures = tmp_path_factory.mktemp("figures")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                        "-d", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env=_env(TIDU_DOCS_FIGURES=str(figures), NO_MKDOCS_2_WARNING="1"))
    assert r.returncode == 0, f"mkdocs build --strict failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    return out


@pytest.mark.parametrize("guide", [p.stem for p in GUIDES])
def test_guide_is_built_with_its_figure(site, guide):
    page = site / "guides" / guide / "index.html"
    assert page.exists(), f"{page} was not built"
    html = page.read_text(encoding="utf-8")
    imgs = re.findall(r'<img[^>]*src="([^"]+\.png)"', html)
    assert imgs, f"guides/{guide} has no <img>"
    for src in imgs:
        png = (page.parent / src).resolve()
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", \
            f"guides/{guide}: <img src={src!r}> does not resolve to a built PNG"
    # the cross-references were resolved into links to the API reference
    assert re.search(r'href="[^"]*api/[\w-]+/#tidu\.', html), f"guides/{guide} has no link into the API"


def test_api_reference_lists_every_public_name(site):
    import importlib
    import types

    ids = set()
    for page in (site / "api").glob("*/index.html"):
        ids |= set(re.findall(r'id="(tidu\.[\w.]+)"', page.read_text(encoding="utf-8")))
    missing = []
    for name in ["layers", "models", "optimizers", "losses", "metrics", "callbacks", "training",
                 "distributed", "autograd", "functional", "data", "datasets", "saving", "export",
                 "lab", "utils", "activations", "initializers", "regularizers", "tuning"]:
        module = importlib.import_module(f"tidu.{name}")
        public = getattr(module, "__all__", None) or [
            n for n in vars(module) if not n.startswith("_")
            and not isinstance(getattr(module, n), types.ModuleType)
            and getattr(getattr(module, n), "__module__", "").startswith("tidu")]
        missing += [f"tidu.{name}.{n}" for n in public if f"tidu.{name}.{n}" not in ids]
    assert not missing, f"not in the API reference: {missing}"


RESULTS = DOCS / "results.md"
PNG = b"\x89PNG\r\n\x1a\n"


def test_results_page_names_real_commands_and_committed_curves():
    """docs/results.md: each headline row names a command that exists, and its curves are PNGs
    committed beside the page (not drawn at build time: they come from the long runs)."""
    text = RESULTS.read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if re.match(r"\| \*\*", line)]
    assert len(rows) >= 6, f"docs/results.md: expected a row per headline figure, got {len(rows)}"
    for row in rows:
        commands = re.findall(r"`((?:python|tidu) [^`]+)`", row)
        assert commands, f"docs/results.md: a row without its command: {row}"
        for command in commands:
            script = re.match(r"python (examples/\S+\.py)", command)
            assert script is None or (ROOT / script.group(1)).is_file(), f"no {script.group(1)}: {row}"
    pictures = re.findall(r"!\[[^\]]*\]\((results/[\w.-]+\.png)\)", text)
    assert pictures, "docs/results.md shows no curves"
    for rel in pictures:
        png = DOCS / rel
        assert png.is_file() and png.read_bytes()[:8] == PNG, f"docs/{rel} is not a committed PNG"
        assert png.stat().st_size < 300_000, f"docs/{rel}: {png.stat().st_size} bytes, keep it small"
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "results.md" in nav, "docs/results.md is not in the site's nav"


def test_readme_quotes_the_results_page():
    """The README links docs/results.md and holds no figure of its own: every accuracy it
    quotes (a percentage with a decimal point) is on the results page."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    results = RESULTS.read_text(encoding="utf-8")
    assert "docs/results.md" in readme
    quoted = re.findall(r"\b\d{2}\.\d+%", readme)
    assert quoted, "the README quotes no result"
    missing = [q for q in quoted if q not in results]
    assert not missing, f"the README quotes {missing}, which docs/results.md does not hold"


def test_results_page_is_built_with_its_curves(site):
    page = site / "results" / "index.html"
    html = page.read_text(encoding="utf-8")
    imgs = re.findall(r'<img[^>]*src="([^"]+\.png)"', html)
    assert imgs, "results has no <img>"
    for src in imgs:
        png = (page.parent / src).resolve()
        assert png.is_file() and png.read_bytes()[:8] == PNG, f"results: <img src={src!r}> is not a PNG"
