"""A student version gives away none of its own model answers.

- Every sentence of a written answer's model answer (the solution region of a graded markdown
  cell in ``solutions/``) is absent from the generated student version: from its prose, its
  code and its outputs. A recap or a printed check that states the answer fails here.
- The key claims of each model answer, as a recap might paraphrase them, are absent too.
- The concept checks whose result a written question asks for (an inequality on the table the
  student reads) live in the source's hidden tests, so the grader runs them on the student's
  numbers and the solution shows them, while the student version does not: a given cell of the
  student version asserts identities between two computations, never a finding.
"""

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "solutions").glob("*.ipynb"))
REGION = re.compile(r"### BEGIN SOLUTION(.*?)### END SOLUTION", re.S)
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", re.S)
MIN_WORDS = 8  # shorter sentences ("See the table.") may be said anywhere
# the key claim of each written answer, in the few words a recap or a check would use to state it
KEY_CLAIMS = {
    "a1_diverse_preferences": {
        "written_ceiling": ["estimation, not representation", "made of near-ties"],
        "written_split": ["a split text is two crowds", "no single location reproduces"],
        "written_mixture": ["pairwise labels alone cannot reveal", "hardly better than a coin"],
    },
    "a2_dpo_vs_rlhf": {
        "written_few_pairs": ["no finite minimum", "does not give the loss a minimum"],
        "written_tiny": ["both gains are established", "so it is not a ranking"],
    },
    "a3_sft_vs_dpo": {
        "written_sft": ["raised the log-likelihood of the rejected responses too", "learns the preference only weakly"],
        "written_dpo": ["likelihood displacement", "constrains the margin, not where the probability goes"],
        "written_which": ["the likelihood of fixed texts"],
    },
}
# the tables whose findings the written questions ask for: each is checked in the source's hidden tests
FINDINGS = {"a1_diverse_preferences": ["results", "mixture"], "a2_dpo_vs_rlhf": ["study"],
            "a3_sft_vs_dpo": ["likelihoods"]}


def words(text: str) -> str:
    """Lower-case words only, so that markdown, punctuation and line breaks do not hide a copy."""
    text = re.sub(r"\$[^$]*\$", " ", text)
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def model_answers(path: Path) -> dict[str, str]:
    """The model answer (and rubric) of each written answer of a source, by grade_id."""
    nb = nbformat.read(path, as_version=4)
    return {cell.metadata["nbgrader"]["grade_id"]: "\n".join(REGION.findall(cell.source)) for cell in nb.cells
            if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution")
            and cell.metadata["nbgrader"].get("grade")}


def model_answer_sentences(path: Path) -> list[str]:
    found = []
    for region in model_answers(path).values():
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
    return " | ".join(words(part) for part in parts)  # part by part: a lone "$" in a sample pairs with no other


def asserted_findings(code: str) -> list[str]:
    """The asserts in ``code`` that state a finding (an inequality or a range), not an identity."""
    code = re.sub(r"^(\s*)[!%].*$", r"\1pass", code, flags=re.M)  # shell and magic lines (the Colab install)
    found = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Assert) and any(
                (isinstance(n, ast.Compare) and any(isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) for op in n.ops))
                or (isinstance(n, ast.Attribute) and n.attr == "between") for n in ast.walk(node.test)):
            found.append(ast.unparse(node.test))
    return found


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_model_answer_sentence_is_in_the_student_version(source):
    sentences = model_answer_sentences(source)
    assert len(sentences) >= 3, f"{source.name}: expected written answers with model answers"
    assert all(s in everything_shown(source) for s in sentences)  # the search finds them where they are
    student = everything_shown(ROOT / "assignments" / source.name)
    leaked = [s for s in sentences if s in student]
    assert not leaked, f"{source.name}: the student version states model answers: {leaked[:3]}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_no_key_claim_of_a_model_answer_is_in_the_student_version(source):
    answers = model_answers(source)
    claims = KEY_CLAIMS[source.stem]
    assert set(claims) == set(answers), f"{source.name}: key claims for {sorted(claims)}, written answers {sorted(answers)}"
    student = everything_shown(ROOT / "assignments" / source.name)
    for grade_id, phrases in claims.items():
        for phrase in phrases:
            assert words(phrase) in words(answers[grade_id]), f"{grade_id}: {phrase!r} is not in its model answer"
            assert words(phrase) not in student, f"{source.name}: the student version states {grade_id}: {phrase!r}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_concept_checks_that_answer_a_question_are_hidden_tests(source):
    hidden = "\n".join(region for cell in nbformat.read(source, as_version=4).cells if cell.cell_type == "code"
                       for region in HIDDEN.findall(cell.source))
    for table in FINDINGS[source.stem]:
        assert any(re.search(rf"\b{table}\b", line) for line in asserted_findings(hidden)), \
            f"{source.name}: no hidden test checks the finding of {table}"
    student = nbformat.read(ROOT / "assignments" / source.name, as_version=4)
    given = [cell for cell in student.cells if cell.cell_type == "code"
             and not cell.metadata.get("nbgrader", {}).get("grade") and not cell.metadata.get("nbgrader", {}).get("solution")]
    stated = [line for cell in given for line in asserted_findings(cell.source)]
    assert not stated, f"{source.name}: given cells of the student version assert findings: {stated}"
