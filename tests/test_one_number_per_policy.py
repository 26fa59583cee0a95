"""One policy shows one number: every evaluation that a committed notebook reports is printed as one line
(``evaluation.evaluation_line``: the run, the setting, the policy's and the judge's digests, the judge's mean, the
KL, the proxy), and a run evaluated in one setting must show the same line in every notebook and solution.

A run is named by its folder without the notebook's number (``leave-one-out-cpu`` for notebook 04's run and for
notebook 09's own copy of it), so a notebook that retrains an earlier notebook's policy, or re-evaluates it with
another judge or on other samples drawn in the same setting, fails here."""

import re
from collections import defaultdict
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^evaluation (\d\d-)?(\S+) ([0-9a-f]{16}): (.+)$", re.MULTILINE)


def printed(notebook) -> list[str]:
    """The text that a notebook's code cells printed or displayed."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            texts.append(text if isinstance(text, str) else "".join(text))
    return texts


def conflicts(notebooks: dict) -> dict:
    """``{(run, setting): {line: [notebooks]}}`` for every run and setting shown with more than one line."""
    seen = defaultdict(lambda: defaultdict(list))
    for name, notebook in notebooks.items():
        for text in printed(notebook):
            for _, run, setting, rest in LINE.findall(text):
                seen[run, setting][rest].append(name)
    return {key: dict(lines) for key, lines in seen.items() if len(lines) > 1}


def committed() -> dict:
    paths = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))
    return {p.relative_to(ROOT).as_posix(): nbformat.read(p, as_version=4) for p in paths}


def test_every_run_shows_one_line_per_setting_in_the_committed_notebooks():
    found = conflicts(committed())
    assert not found, "one policy, two numbers (re-execute the older notebook, or load the run it reports): " + \
        "; ".join(f"{run} {setting}: " + " | ".join(f"{line} in {', '.join(where)}" for line, where in lines.items())
                  for (run, setting), lines in found.items())


def fake(*lines):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="\n".join(lines) + "\n")])])


A = "evaluation 04-leave-one-out-cpu 0123456789abcdef: policy 1111111111111111, judged by 2222222222222222: " \
    "judge +0.520, KL 1.480 nats, proxy +1.000, n 400"


def test_the_check_finds_two_numbers_for_one_run_and_setting():
    same = A.replace("04-", "09-")                                  # notebook 09's copy of the same run
    assert conflicts({"04": fake(A), "09": fake("table", same)}) == {}
    other_judge = same.replace("judge +0.520", "judge +0.950")
    found = conflicts({"04": fake(A), "09": fake(other_judge)})
    assert list(found) == [("leave-one-out-cpu", "0123456789abcdef")]
    assert sorted(w for where in found["leave-one-out-cpu", "0123456789abcdef"].values() for w in where) == \
        ["04", "09"]
    retrained = same.replace("policy 1111111111111111", "policy 3333333333333333")
    assert conflicts({"04": fake(A), "09": fake(retrained)})           # a retrained copy is another policy
    other_setting = other_judge.replace("0123456789abcdef", "fedcba9876543210")
    assert conflicts({"04": fake(A), "09": fake(other_setting)}) == {}   # another setting: another evaluation
    displayed = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("execute_result", data={"text/plain": other_judge}, execution_count=1)])])
    assert conflicts({"04": fake(A), "09": displayed})


def test_the_lines_the_store_prints_are_the_lines_read_here():
    import numpy as np

    from course_utils.evaluation import evaluation_line
    line = evaluation_line({"run": "04-leave-one-out-cpu", "setting": "0123456789abcdef", "policy": "1" * 16,
                            "judge_id": "2" * 16, "judge": np.array([0.5, 0.54]), "log_ratio": np.array([1.4, 1.56]),
                            "reward": np.array([1.0, 1.0])})
    assert LINE.findall(line) == [("04-", "leave-one-out-cpu", "0123456789abcdef", A.split(": ", 1)[1]
                                   .replace("n 400", "n 2"))]
