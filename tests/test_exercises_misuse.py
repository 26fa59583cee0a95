"""Bad input to the exercise checks' own arguments: a clear error naming the argument. (A student's
function that misbehaves is not misuse: it gets the "not yet right" outcome, see test_exercises.py.)"""

from course_utils import exercises
from misuse import Case


def _fn(*args):
    raise NotImplementedError


CASES = [
    Case("exercises.get", lambda: exercises.get("no_such_exercise"), ValueError, "name"),
    Case("exercises.get", lambda: exercises.get(6), TypeError, "name"),
    Case("exercises.run", lambda: exercises.run("bradley", _fn), ValueError, "name"),
    Case("exercises.run", lambda: exercises.run("dpo_loss", _fn, timeout=0), ValueError, "timeout"),
    Case("exercises.run", lambda: exercises.run("dpo_loss", _fn, timeout="5"), TypeError, "timeout"),
    Case("exercises.check", lambda: exercises.check(None, _fn), TypeError, "name"),
    Case("exercises.check", lambda: exercises.check("dpo_loss", _fn, timeout=float("nan")), ValueError, "timeout"),
]


def test_misuse_of_the_checks():
    for case in CASES:
        case.run()
