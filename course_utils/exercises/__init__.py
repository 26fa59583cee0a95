"""Exercises checked in place ("Your turn" cells), one module per notebook.

In a notebook::

    from course_utils import exercises

    def bradley_terry(r_chosen, r_rejected):
        raise NotImplementedError("your code here")

    bradley_terry = exercises.check("bradley_terry", bradley_terry)

``check`` prints one of three outcomes (not done yet, passed, not yet right with the first
failing case and a hint) and returns the function the later cells use: the student's once
it passes, the course's helper otherwise. See ``_runner`` for how results are compared.
"""

from __future__ import annotations

import importlib
import pkgutil

from .. import _checks
from ._runner import NOT_DONE, NOT_YET_RIGHT, PASSED, Case, Exercise, Mistake, Result, evaluate, report

__all__ = ["check", "run", "get", "names", "Case", "Exercise", "Mistake", "Result",
           "NOT_DONE", "PASSED", "NOT_YET_RIGHT"]

_REGISTRY: dict[str, Exercise] = {}


def _registry() -> dict[str, Exercise]:
    """Every exercise of every ``nbNN`` module of this package, by name (loaded once)."""
    if not _REGISTRY:
        found = {}
        for module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
            for ex in importlib.import_module(f"{__name__}.{module}").EXERCISES:
                if ex.name in found:
                    raise ValueError(f"exercises: two exercises are named {ex.name!r}")
                found[ex.name] = ex
        _REGISTRY.update(found)
    return _REGISTRY


def names() -> list[str]:
    """The names of all exercises, in notebook order."""
    return sorted(_registry(), key=lambda n: (_registry()[n].notebook, n))


def get(name: str) -> Exercise:
    """The exercise called ``name``."""
    return _exercise("exercises.get", name)


def _exercise(where: str, name) -> Exercise:
    if not isinstance(name, str):
        raise TypeError(f"{where}: name must be the name of an exercise (a string), got {type(name).__name__}")
    if name not in _registry():
        raise ValueError(f"{where}: name must be one of the course's exercises {names()}, got {name!r}")
    return _registry()[name]


def run(name: str, fn, timeout: float = 5.0) -> Result:
    """Check ``fn`` against exercise ``name`` and return the ``Result`` without printing."""
    ex = _exercise("exercises.run", name)
    return evaluate(ex, fn, _checks.number("exercises.run", "timeout", timeout, positive=True))


def check(name: str, fn, timeout: float = 5.0):
    """Check ``fn``, print the outcome, and return the function that the notebook goes on
    with: ``fn`` once it passes, the course's helper otherwise."""
    ex = _exercise("exercises.check", name)
    result = evaluate(ex, fn, _checks.number("exercises.check", "timeout", timeout, positive=True))
    print(report(ex, result))
    return fn if result.outcome == PASSED else ex.reference
