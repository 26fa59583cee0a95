"""The prose says what the outputs beside it print.

A key number in a notebook's markdown is tagged with an HTML comment right after it,
``+0.52<!--out-->`` (invisible wherever the notebook is rendered). Each tagged number must
be printed by some output of the same notebook, at the precision the prose gives it (a
percentage may stand for a printed share: ``42 %<!--out-->`` matches ``0.42``). So a
re-executed notebook whose numbers move fails here until its prose follows them.
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NUMBER = r"[+\-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
TAGGED = re.compile(rf"({NUMBER})(\s*%)?\s*<!--\s*out\s*-->")
PRINTED = re.compile(NUMBER)
# notebooks whose prose is held to their outputs, at least this many numbers each
HELD = {"06_dpo_derivation": 4}
HELD["01_supervised_fine_tuning"] = 10
HELD["08_orpo"] = 10
HELD["09_comparison_and_overoptimisation"] = 10
HELD["02_preference_data_and_reward_model"] = 10
HELD["04_reinforce_rloo_grpo"] = 10
HELD["03_best_of_n_and_rejection_sampling"] = 10
HELD["07_dpo"] = 10
HELD["00_setup_and_data"] = 10
HELD["05_ppo"] = 10
MIN_TAGS = 10


def value(text: str) -> float:
    return float(text.replace("−", "-").replace(",", ""))


def decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def printed_numbers(nb) -> list[float]:
    """Every number that a code cell's output shows (streams and the plain text or HTML of results)."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")] + [v for k, v in out.get("data", {}).items()
                                              if k in ("text/plain", "text/html") and isinstance(v, str)]
            for text in texts:
                found += [value(m) for m in PRINTED.findall(text)]
    return found


def tagged_numbers(nb) -> list[tuple[str, bool]]:
    return [(m[1], bool(m[2])) for cell in nb.cells if cell.cell_type == "markdown"
            for m in TAGGED.finditer(cell.source)]


def shown_by_an_output(text: str, percent: bool, printed: list[float]) -> bool:
    """Whether some printed number rounds to ``text`` at its precision (a percentage: its share too)."""
    target, tolerance = value(text), 0.5 * 10 ** -decimals(text) + 1e-9
    return any(abs(p - target) <= tolerance or (percent and abs(100 * p - target) <= tolerance) for p in printed)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_tagged_number_is_printed_by_the_notebook(path):
    nb = nbformat.read(path, as_version=4)
    printed = printed_numbers(nb)
    missing = [t + ("%" if pct else "") for t, pct in tagged_numbers(nb) if not shown_by_an_output(t, pct, printed)]
    assert not missing, f"{path.name}: the prose says {missing}, which no output of the notebook prints"


@pytest.mark.parametrize("stem, least", sorted(HELD.items()))
def test_notebooks_hold_their_key_numbers_to_their_outputs(stem, least):
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    assert len(tagged_numbers(nb)) >= least, f"{stem}: tag at least {least} key numbers with <!--out-->"


def test_a_moved_number_is_caught():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(x)")
    cell.outputs = [nbformat.v4.new_output("stream", text="gain +0.5213, share 0.42\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("A gain of +0.52<!--out--> and 42 %<!--out-->; then +0.61<!--out-->."), cell]
    printed = printed_numbers(nb)
    verdicts = [shown_by_an_output(t, pct, printed) for t, pct in tagged_numbers(nb)]
    assert verdicts == [True, True, False]
