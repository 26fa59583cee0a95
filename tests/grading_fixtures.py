"""Fixture submissions for the grading tests (tests/test_grading.py).

A submission is what a student hands in: the student version of an assignment
(``assignments/<name>.ipynb``) with its answer cells filled. ``submission`` fills every
answer cell with the solution's code (from ``solutions/<name>.ipynb``, without the
``### BEGIN/END SOLUTION`` lines) and then puts a fixture's own code into the cells it
names. Each fixture is one usual wrong answer, or one hostile submission, written out below
as the code a student would have typed, with the tests it must lose points on.

Adding an assignment: add its fixtures to ``FIXTURES`` under the assignment's name.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
MARKER_LINE = re.compile(r"^\s*#+\s*(BEGIN|END) SOLUTION\s*$")


@dataclass(frozen=True)
class Fixture:
    name: str
    answers: dict = field(default_factory=dict)  # grade_id of an answer cell -> the code handed in
    loses: frozenset = frozenset()                # graded tests that must score 0; all others full marks
    status: str = "ok"                            # how grading must end for it ("ok", or the start of a failure)
    what: str = ""


def solution_answers(assignment: str) -> dict[str, str]:
    """Every answer cell of the solution, markers removed: what a perfect student writes."""
    nb = nbformat.read(ROOT / "solutions" / f"{assignment}.ipynb", as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            out[meta["grade_id"]] = "\n".join(l for l in cell.source.splitlines() if not MARKER_LINE.match(l))
    return out


def submission(assignment: str, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The student version with the solution in every answer cell, except those in ``answers``."""
    nb = copy.deepcopy(nbformat.read(ROOT / "assignments" / f"{assignment}.ipynb", as_version=4))
    filled = solution_answers(assignment) | answers
    unknown = set(answers) - set(solution_answers(assignment))
    if unknown:
        raise KeyError(f"{assignment} has no answer cell {sorted(unknown)}")
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = filled[grade_id]
    return nb


def _edit(assignment: str, name: str, old: str = "", new: str = "") -> str:
    """The solution's code of one answer cell, with ``old`` replaced by ``new``."""
    code = solution_answers(assignment)[name]
    if old not in code:
        raise ValueError(f"fixture edit: {old!r} is not in the solution's {name} of {assignment} "
                         "(did the solution change?)")
    return code.replace(old, new)


def _a1(name: str, old: str = "", new: str = "") -> str:
    """The solution's code of one answer cell of assignment 1, with ``old`` replaced by ``new``."""
    return _edit("a1_diverse_preferences", name, old, new)


A1_TESTS = frozenset({"test_opposite_sign", "test_win_matrix", "test_count_cycles", "test_bt_loss_sign",
                      "test_bt_loss_mean", "test_borda", "test_results", "test_mixture_win", "test_mixture"})

A1 = [
    Fixture("solution", what="the solution itself: full automatic marks"),
    # ---- usual wrong answers: each loses its own test, and the numbers computed from it
    Fixture("bt_sign_flipped", what="Bradley-Terry loss with the sign of the margin flipped: -log sigma(r_j - r_i)",
            answers={"expected_bt_loss": _a1("expected_bt_loss", "rewards[:, None] - rewards[None, :]",
                                             "rewards[None, :] - rewards[:, None]")},
            loses=frozenset({"test_bt_loss_sign", "test_results", "test_mixture"})),
    Fixture("bt_sum_not_mean", what="Bradley-Terry loss summed over labels instead of averaged (the fit, "
                                    "being scale-free, is unchanged)",
            answers={"expected_bt_loss": _a1("expected_bt_loss", ").sum() / win.sum()", ").sum()")},
            loses=frozenset({"test_bt_loss_mean"})),
    Fixture("ties_as_wins", what="a tie counted as a win: P(r_i >= r_j) instead of P(r_i > r_j)",
            answers={"win_matrix": _a1("win_matrix", "np.cumsum(hist, axis=1) - hist", "np.cumsum(hist, axis=1)")},
            loses=frozenset({"test_win_matrix", "test_results", "test_mixture"})),
    Fixture("cycles_counted_thrice", what="each 3-cycle counted once per starting text (trace of A^3, not / 3)",
            answers={"count_cycles": _a1("count_cycles", "int(np.trace(a @ a @ a)) // 3", "int(np.trace(a @ a @ a))")},
            loses=frozenset({"test_count_cycles", "test_results", "test_mixture"})),
    Fixture("mixture_shares_swapped", what="the share of calm readers given to the sentiment readers",
            answers={"mixture_win": _a1("mixture_win",
                "(1 - share_calm) * win_matrix(rating_lists) + share_calm * win_matrix(calm)",
                "share_calm * win_matrix(rating_lists) + (1 - share_calm) * win_matrix(calm)")},
            loses=frozenset({"test_mixture_win", "test_mixture"})),
    # ---- hostile submissions: each costs its author the tests it breaks, and nothing else
    Fixture("hang", what="an endless loop in an answer cell: nbgrader interrupts the cell at --cell-timeout; the "
                         "function after the loop is never defined, the rest of the notebook is graded",
            answers={"opposite_sign": "while True:\n    pass\n\n" + _a1("opposite_sign")},
            loses=frozenset({"test_opposite_sign"})),
    Fixture("crash_os_exit", what="os._exit in the loss: the kernel dies, nbgrader drops the submission",
            answers={"expected_bt_loss": "import os\n\ndef expected_bt_loss(rewards, win):\n    os._exit(1)"},
            loses=A1_TESTS, status="not graded: the kernel died"),
    Fixture("sys_exit", what="sys.exit in a function: IPython turns it into an error in the cells that call it",
            answers={"mixture_win": "import sys\n\ndef mixture_win(rating_lists, share_calm):\n    sys.exit(1)"},
            loses=frozenset({"test_mixture_win", "test_mixture"})),
    Fixture("memory_hog", what="an all-pairs matrix over the whole corpus (23,703 texts: 4.5 GB) in a function: "
                               "MemoryError under the memory limit",
            answers={"borda_scores": _a1("borda_scores",
                "    prefer = preference_matrix(win)",
                "    everything = np.ones((23_703, 23_703))  # fits in RAM here, but not under --memory-gb 4\n"
                "    del everything\n    prefer = preference_matrix(win)")},
            loses=frozenset({"test_borda", "test_results", "test_mixture"})),
    Fixture("delete_course_file", what="deletes course_utils/preferences.py, found through course_utils.__file__: "
                                       "only the sandbox's copy goes",
            answers={"win_matrix": "import pathlib\n\nimport course_utils\n\n"
                                   "_target = pathlib.Path(course_utils.__file__).parent / 'preferences.py'\n"
                                   "_target.unlink()\nprint('deleted', _target)\n\n" + _a1("win_matrix")}),
]

# graded alone, with a wall-clock limit of a few seconds and no per-cell timeout
A1_HANG_FOREVER = Fixture("hang_forever", what="an endless loop that ignores interrupts: killed at --timeout",
                          answers={"opposite_sign": "import time\n\nwhile True:\n    try:\n        time.sleep(0.1)\n"
                                                    "    except KeyboardInterrupt:\n        pass"},
                          loses=A1_TESTS, status="timed out")

A2_NAME = "a2_dpo_vs_rlhf"
A2 = [
    Fixture("solution", what="the solution itself: full automatic marks"),
    Fixture("dpo_beta_sign", what="DPO loss with the sign of beta flipped: -log sigma(-beta * margin)",
            answers={"dpo_loss": _edit(A2_NAME, "dpo_loss", "logsigmoid(beta * margin)", "logsigmoid(-beta * margin)")},
            loses=frozenset({"test_dpo_sign", "test_results"})),
    Fixture("dpo_no_reference", what="DPO loss without the reference model: log pi_theta(y_w) - log pi_theta(y_l)",
            answers={"dpo_loss": _edit(A2_NAME, "dpo_loss", "torch.log_softmax(theta, dim=-1) - log_ref",
                                       "torch.log_softmax(theta, dim=-1)")},
            loses=frozenset({"test_dpo_reference", "test_results"})),
    Fixture("kl_penalty_sign", what="RLHF reward with the KL penalty's sign flipped: r + beta log(pi / pi_ref)",
            answers={"reinforce_kl_loss": _edit(A2_NAME, "reinforce_kl_loss", "reward[actions] - beta *",
                                                "reward[actions] + beta *")},
            loses=frozenset({"test_reinforce_kl", "test_train_rlhf", "test_results"})),
]

A3_NAME = "a3_sft_vs_dpo"
A3_MEASURED = frozenset({"test_pair_logprobs", "test_likelihoods"})  # computed with response_logprob
A3 = [
    Fixture("solution", what="the solution itself: full automatic marks"),
    Fixture("logprob_mean", what="the mean of the response's token log-probs instead of their sum",
            answers={"response_logprob": _edit(A3_NAME, "response_logprob",
                                               "return (per_token * completion_mask[:, 1:]).sum(-1)",
                                               "return (per_token * completion_mask[:, 1:]).sum(-1) / "
                                               "completion_mask[:, 1:].sum(-1)")},
            loses=A3_MEASURED | {"test_logprob_sum"}),
    Fixture("logprob_no_shift", what="no shift: the logits at position t scored against the token at t",
            answers={"response_logprob": "def response_logprob(logits, input_ids, completion_mask):\n"
                                         "    logps = torch.log_softmax(logits, dim=-1)\n"
                                         "    per_token = logps.gather(-1, input_ids.unsqueeze(-1)).squeeze(-1)\n"
                                         "    return (per_token * completion_mask).sum(-1)"},
            loses=A3_MEASURED | {"test_logprob_shift"}),
    Fixture("logprob_prompt_and_padding", what="no mask: the prompt's and the padding's tokens summed with the "
                                               "response's",
            answers={"response_logprob": _edit(A3_NAME, "response_logprob",
                                               "(per_token * completion_mask[:, 1:]).sum(-1)", "per_token.sum(-1)")},
            loses=A3_MEASURED | {"test_logprob_mask"}),
    Fixture("logprob_raw_logits", what="logits used as log-probs (no log-softmax)",
            answers={"response_logprob": _edit(A3_NAME, "response_logprob",
                                               "torch.log_softmax(logits[:, :-1], dim=-1)", "logits[:, :-1]")},
            loses=A3_MEASURED | {"test_logprob_normalised"}),
]

FIXTURES = {"a1_diverse_preferences": A1, A2_NAME: A2, A3_NAME: A3}
