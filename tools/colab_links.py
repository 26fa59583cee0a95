"""The repository's URL in one place (``pyproject.toml``, ``[project.urls] Repository``) and every Colab badge
and install cell written from it.

    python tools/colab_links.py           # rewrite them all (notebooks/, solutions/, assignments/, README.md)
    python tools/colab_links.py --check   # list the ones that disagree; exit 1 if any

A badge opens its own file in Colab (``https://colab.research.google.com/github/<owner>/<name>/blob/main/<path>``)
and an install cell installs the course from the repository (``pip install "preference-course @ git+<URL>"``).
Only the text of those links changes: no notebook is executed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("notebooks", "solutions", "assignments")
COLAB = re.compile(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w.-]+/([\w./-]+\.ipynb)")
INSTALL = re.compile(r"git\+https://github\.com/[\w.-]+/[\w.-]+?(?=[\"'\s@#]|\.git|$)")


def repository_url() -> str:
    """``https://github.com/<owner>/<name>``, from pyproject.toml."""
    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"pyproject.toml: [project.urls] Repository must be https://github.com/<owner>/<name>, "
                         f"got {url!r}")
    return url


def colab_url(path) -> str:
    """The Colab link that opens ``path`` (relative to the repository) from the repository's main branch."""
    return f"https://colab.research.google.com/github/{repository_url().removeprefix('https://github.com/')}" \
           f"/blob/main/{Path(path).as_posix()}"


def files() -> list[Path]:
    return [ROOT / "README.md"] + sorted(p for folder in FOLDERS for p in (ROOT / folder).glob("*.ipynb"))


def rewritten(text: str, path: Path) -> str:
    """``text`` of the file ``path`` with its badges and install URLs written from ``repository_url()``.
    A notebook's badge opens the notebook itself; the README's open the notebooks they name."""
    def badge(match):
        target = path.relative_to(ROOT) if path.suffix == ".ipynb" else Path(match.group(1))
        return colab_url(target)
    return INSTALL.sub(f"git+{repository_url()}", COLAB.sub(badge, text))


def sources(path: Path) -> list[str]:
    """The texts to check: a notebook's cell sources, the README's whole text."""
    if path.suffix != ".ipynb":
        return [path.read_text()]
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]]


def disagreements() -> list[str]:
    """``path: link`` for every badge or install URL that is not what ``rewritten`` writes."""
    found = []
    for path in files():
        for text in sources(path):
            for match in (*COLAB.finditer(text), *INSTALL.finditer(text)):
                if rewritten(match.group(0), path) != match.group(0):
                    found.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    return found


def rewrite() -> list[Path]:
    """Rewrite every file whose links disagree (notebooks cell by cell, outputs untouched); returns them."""
    changed = []
    for path in files():
        if path.suffix != ".ipynb":
            text = path.read_text()
            if rewritten(text, path) != text:
                path.write_text(rewritten(text, path))
                changed.append(path)
            continue
        nb = nbformat.read(path, as_version=4)
        touched = False
        for cell in nb.cells:
            if rewritten(cell.source, path) != cell.source:
                cell.source = rewritten(cell.source, path)
                touched = True
        if touched:
            nbformat.write(nb, path)
            changed.append(path)
    return changed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only list the links that disagree")
    args = parser.parse_args()
    if args.check:
        wrong = disagreements()
        print("\n".join(wrong) or f"every badge and install cell points at {repository_url()}")
        sys.exit(1 if wrong else 0)
    for path in rewrite():
        print(f"rewrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
