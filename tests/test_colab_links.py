"""Every Colab badge and install cell points at the repository named once, in pyproject.toml's
[project.urls] (tools/colab_links.py rewrites them all from there)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import colab_links  # noqa: E402


def test_every_badge_and_install_cell_agrees_with_pyproject():
    wrong = colab_links.disagreements()
    assert not wrong, "run `python tools/colab_links.py`:\n" + "\n".join(wrong)


@pytest.mark.parametrize("path", sorted(p for folder in colab_links.FOLDERS for p in (ROOT / folder).glob("*.ipynb")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_notebook_has_its_own_badge_and_an_install_cell(path):
    text = "\n".join(colab_links.sources(path))
    if path.parent.name == "notebooks":
        assert colab_links.colab_url(path.relative_to(ROOT)) in text, f"{path.name}: no Colab badge opening itself"
    assert f"git+{colab_links.repository_url()}" in text, f"{path.name}: no install cell"


def test_the_rewrite_points_old_links_at_the_repository(tmp_path, monkeypatch):
    """A badge and an install cell naming another repository are rewritten; a notebook's badge opens itself."""
    notebook = ROOT / "notebooks" / "01_supervised_fine_tuning.ipynb"
    old = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
           "(https://colab.research.google.com/github/someone/elsewhere/blob/dev/notebooks/00_setup_and_data.ipynb)\n"
           '!pip install -q "preference-course @ git+https://github.com/someone/elsewhere"')
    new = colab_links.rewritten(old, notebook)
    assert colab_links.colab_url("notebooks/01_supervised_fine_tuning.ipynb") in new
    assert f'git+{colab_links.repository_url()}"' in new and "someone" not in new


def test_a_repository_url_that_is_not_github_is_refused(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[project.urls]\nRepository = "http://example.org/x"\n')
    monkeypatch.setattr(colab_links, "ROOT", tmp_path)
    with pytest.raises(ValueError, match="Repository"):
        colab_links.repository_url()


def test_the_command_rewrites_a_notebook_and_leaves_its_outputs(tmp_path, monkeypatch):
    import nbformat
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "README.md").write_text("no badges here\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('!pip install "preference-course @ git+https://github.com/old/place"',
                                          outputs=[nbformat.v4.new_output("stream", text="git+https://github.com/old/place")])]
    nbformat.write(nb, tmp_path / "notebooks" / "00_x.ipynb")
    monkeypatch.setattr(colab_links, "ROOT", tmp_path)
    assert colab_links.disagreements() and colab_links.rewrite() == [tmp_path / "notebooks" / "00_x.ipynb"]
    cell = nbformat.read(tmp_path / "notebooks" / "00_x.ipynb", as_version=4).cells[0]
    assert f"git+{colab_links.repository_url()}" in cell.source and cell.outputs[0].text.endswith("old/place")
    assert not colab_links.disagreements()
