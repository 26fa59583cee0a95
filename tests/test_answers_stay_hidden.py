"""A student version gives away none of its own model answers.

Every sentence of a written answer's model answer (the solution region of a graded markdown
cell in ``solutions/``) must be absent from the generated student version: from its prose, its
code and its outputs. A recap or a printed check that states the answer fails here.
"""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "solutions").glob("*.ipynb"))
REGION = re.compile(r"### BEGIN SOLUTION(.*?)### END SOLUTION", re.S)
MIN_WORDS = 8  # shorter sentences ("See the table.") may be said anywhere


def words(text: str) -> str:
    """Lower-case words only, so that markdown, punctuation and line breaks do not hide a copy."""
    text = re.sub(r"\$[^$]*\$", " ", text)
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def model_answer_sentences(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    found = []
    for cell in nb.cells:
        grading = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and grading.get("solution") and grading.get("grade"):
            for region in REGION.findall(cell.source):
                region = region.replace("**Model answer.**", " ")
                for sentence in re.split(r"(?<=[.!?])\s+", region):
                    if len(words(sentence).split()) >= MIN_WORDS:
                        found.append(words(sentence))
    return found


def everything_shown(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    parts = []
    for cell in nb.cells:
        parts.append(cell.source)
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts += [v for v in out.get("data", {}).values() if isinstance(v, str)]
    return words("\n".join(parts))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_model_answer_sentence_is_in_the_student_version(source):
    sentences = model_answer_sentences(source)
    assert len(sentences) >= 3, f"{source.name}: expected written answers with model answers"
    assert all(s in everything_shown(source) for s in sentences)  # the search finds them where they are
    student = everything_shown(ROOT / "assignments" / source.name)
    leaked = [s for s in sentences if s in student]
    assert not leaked, f"{source.name}: the student version states model answers: {leaked[:3]}"
