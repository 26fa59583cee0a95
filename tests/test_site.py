"""The course site: built from the committed notebooks and docs/ (tools/site_build.py), then opened page by page in
headless Chromium (tools/check_site.py): math rendered, images loaded, internal links resolving, folded
<details>, no console errors. Without Debian's chromium and chromium-driver the browser part is skipped,
and `make test` says so."""

import re
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import check_site  # noqa: E402
import site_build  # noqa: E402

BUILD = ROOT / "build"


@pytest.fixture(scope="module")
def site():
    start = time.perf_counter()
    site_build.build(BUILD / "site")
    print(f"site built in {time.perf_counter() - start:.0f}s")
    return BUILD / "site"


def test_navigation_lists_every_notebook_in_course_order_and_every_docs_page(site):
    config = yaml.safe_load((BUILD / "site-src" / "mkdocs.yml").read_text())  # what the build used
    sections = {name: entries for item in config["nav"] for name, entries in item.items()}
    notebooks = [next(iter(e.values())) for e in sections["Notebooks"]]
    assert notebooks == [f"notebooks/{p.name}" for p in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))]
    assert [next(iter(e.values())) for e in sections["Pages"]] == \
        [f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md"))]
    for page in notebooks:
        assert (site / page.replace(".ipynb", ".html")).exists(), page


def test_each_notebook_page_links_to_colab_and_to_its_download(site):
    from colab_links import colab_url
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        html = (site / "notebooks" / f"{path.stem}.html").read_text()
        assert colab_url(f"notebooks/{path.name}") in html, path.name
        assert f'href="{path.name}"' in html and (site / "notebooks" / path.name).exists(), path.name


def test_math_is_served_from_the_site_itself(site):
    assert (site / "assets" / "mathjax" / "tex-svg-full.js").exists()
    remote = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=[\"']?(?:https?:)?//", re.IGNORECASE)
    for page in site.rglob("*.html"):
        found = remote.search(page.read_text())
        assert not found, f"{page.relative_to(site)} loads from the network at view time: {found[0]}"


@pytest.mark.skipif(not check_site.browser_available(),
                    reason="no Chromium here (Debian: apt-get install chromium chromium-driver)")
def test_every_page_reads_right_in_chromium(site):
    start = time.perf_counter()
    problems, screenshots = check_site.check_site(site, BUILD / "site-screenshots")
    print(f"browser check in {time.perf_counter() - start:.0f}s; screenshots: {[str(s) for s in screenshots]}")
    assert not problems, problems
    assert len(screenshots) >= 3 and all(s.stat().st_size > 10_000 for s in screenshots)


def test_the_readme_is_a_short_entry_point_whose_links_all_exist():
    """The README stays a learner's front door (about 150 lines at most); every file or page it links exists."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 160, "README.md: move the details to a page under docs/"
    for link in re.findall(r"\]\(([^)\s]+)\)", readme):
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        assert (ROOT / path).exists(), f"README.md links {link}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+\s+(.+)$", (ROOT / path).read_text(), re.MULTILINE)
            assert anchor in {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}, link
