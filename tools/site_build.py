"""Build the course site (``make site``): the committed notebooks, rendered as they are (never executed),
the README as the home page and every ``docs/*.md`` page, with MkDocs, Material and mkdocs-jupyter.

The pages are staged under ``build/site-src`` and the site is written to ``build/site``:

- navigation in course order, found in the folders: ``notebooks/[0-9]*.ipynb`` sorted by name, then the
  ``docs/*.md`` pages (no hand-kept list: a new notebook or page appears by being there);
- each notebook page opens with a link to open it in Colab and one to download it (the repository's URL
  from ``pyproject.toml``'s ``[project.urls]``, as ``tools/colab_links.py`` writes the badges);
- math by MathJax 3 (SVG output, so no web fonts) served from the site itself (the copy of MathJax's files
  that PyPI's ``django-static-mathjax`` ships; it needs no Django), never from a CDN;
- links from the README and docs pages to files that are not pages (code, solutions) go to the repository.

Usage: ``python tools/site_build.py [--output build/site]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mathjax
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from colab_links import colab_url, repository_url  # noqa: E402

MATHJAX = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\(([^)]*)\)")
LINK = re.compile(r"(\]\()([^)#\s]+)((?:#[^)\s]*)?\))")


def notebooks() -> list[Path]:
    """The course's notebooks in course order (their names start with their number)."""
    return sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def pages() -> list[Path]:
    return sorted((ROOT / "docs").glob("*.md"))


def title(path: Path) -> str:
    """A page's first heading (a notebook's first markdown cell's), else its file name."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        text = next(("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"), "")
    else:
        text = path.read_text()
    heading = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    return heading.group(1).strip() if heading else path.stem.replace("_", " ")


def stage_notebook(source: Path, target: Path):
    """A copy whose Colab badge (an image from the network) becomes two text links: Colab and download."""
    nb = json.loads(source.read_text())
    links = (f"[Open in Colab]({colab_url(source.relative_to(ROOT))}) · "
             f"[Download the notebook]({source.name})")
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and BADGE.search(text):
            cell["source"] = BADGE.sub(lambda m: links, text)
            break
    else:
        nb["cells"].insert(0, {"cell_type": "markdown", "metadata": {}, "source": links})
    target.write_text(json.dumps(nb))


def stage_markdown(source: Path, target: Path, staged: set[Path]):
    """A copy whose relative links to files that are not on the site point to the repository instead."""
    def relink(match):
        link = match.group(2)
        if re.match(r"[a-z]+:", link) or link.startswith("/"):
            return match.group(0)
        resolved = (source.parent / link).resolve()
        if resolved in staged or not resolved.is_relative_to(ROOT):
            return match.group(0)
        kind = "tree" if resolved.is_dir() else "blob"
        return f"{match.group(1)}{repository_url()}/{kind}/main/{resolved.relative_to(ROOT)}{match.group(3)}"
    text = source.read_text()
    if source == ROOT / "README.md":  # the home page sits at the root of the site, as the README does
        text = BADGE.sub(lambda m: f"[Colab]({m.group(1)})", text)
    target.write_text(LINK.sub(relink, text))


def stage(src: Path) -> dict:
    """Stage every page under ``src`` (mirroring the repository's folders) and return the MkDocs config."""
    shutil.rmtree(src, ignore_errors=True)
    (src / "notebooks").mkdir(parents=True)
    (src / "docs").mkdir()
    staged = {ROOT / "README.md", *notebooks(), *pages()}
    stage_markdown(ROOT / "README.md", src / "index.md", staged | {ROOT / "README.md"})
    for path in notebooks():
        stage_notebook(path, src / "notebooks" / path.name)
    for path in pages():
        stage_markdown(path, src / "docs" / path.name, staged)
    # the one bundle the pages load and the folders it loads from on demand, not MathJax's other bundles
    shutil.copytree(MATHJAX, src / "assets" / "mathjax", ignore=lambda folder, names: [
        n for n in names if Path(folder) == MATHJAX and n.endswith(".js") and n != "tex-svg-full.js"])
    config = yaml.safe_load((ROOT / "tools" / "site" / "mkdocs.yml").read_text())
    config["theme"]["custom_dir"] = str(ROOT / "tools" / "site" / config["theme"]["custom_dir"])
    config["nav"] = [{"Home": "index.md"},
                     {"Notebooks": [{title(p): f"notebooks/{p.name}"} for p in notebooks()]},
                     {"Pages": [{title(p): f"docs/{p.name}"} for p in pages()]}]
    return config


def build(output: Path) -> float:
    """Build the site into ``output``; returns the seconds it took."""
    start = time.perf_counter()
    src = output.parent / f"{output.name}-src"
    config = stage(src / "pages")
    config.update(docs_dir=str(src / "pages"), site_dir=str(output.resolve()))
    (src / "mkdocs.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--quiet", "--strict", "--clean",
                    "--config-file", str(src / "mkdocs.yml")], check=True, cwd=src,  # its .cache/ goes there too
                   env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "build" / "site", help="where the site goes")
    args = parser.parse_args()
    seconds = build(args.output)
    print(f"site built in {seconds:.0f}s: {args.output / 'index.html'}")


if __name__ == "__main__":
    main()
