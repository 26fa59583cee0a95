"""The runner behind every "Your turn" cell: a student's function against the course's helper.

``check(name, fn)`` runs ``fn`` on the exercise's cases, compares each result with the
course's tested helper (structure, shape, dtype, values, and the gradient where training
differentiates the function) and prints one of three outcomes, never a traceback:

- not done yet: ``fn`` still raises ``NotImplementedError``; the notebook goes on with the
  course's helper;
- passed: ``fn`` agrees with the helper on every case; the notebook goes on with ``fn``;
- not yet right: the first case where it does not, what was expected and what came back,
  and a hint when the result is that of a known mistake (each exercise lists its known
  mistakes as wrong functions: a result that equals one of theirs gets its hint).

An exercise lives in ``course_utils/exercises/nbNN.py`` (one module per notebook) as an
``Exercise`` in that module's ``EXERCISES`` list; modules are found automatically.
"""

from __future__ import annotations

import copy
import inspect
import math
import signal
import threading
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

NOT_DONE, PASSED, NOT_YET_RIGHT = "not done yet", "passed", "not yet right"


@dataclass(frozen=True)
class Case:
    """One call of the function: its arguments and a short label a student can read."""
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class Mistake:
    """A known wrong version of the function and the hint that its result earns."""
    fn: Callable
    hint: str


@dataclass(frozen=True)
class Exercise:
    """An exercise: the course's ``reference`` helper, the ``cases`` it is checked on (a
    function that returns a list of ``Case``, so that tensors are made fresh each time),
    its known ``mistakes``, and whether the gradient is compared (``grad``)."""
    name: str
    notebook: str
    reference: Callable
    cases: Callable[[], list]
    mistakes: tuple = ()
    grad: bool = False
    atol: float = 1e-6
    rtol: float = 1e-5

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"Exercise: name must be an identifier, got {self.name!r}")
        if not callable(self.reference) or not callable(self.cases):
            raise TypeError(f"Exercise {self.name}: reference and cases must be callables")
        if not all(isinstance(m, Mistake) for m in self.mistakes):
            raise TypeError(f"Exercise {self.name}: mistakes must be Mistake objects")


@dataclass(frozen=True)
class Result:
    """What a check found: one of the three outcomes and the line that says it."""
    outcome: str
    message: str
    hint: str = ""


class _TimedOut(Exception):
    pass


class _Wrong(Exception):
    """A difference between the student's result and the expected one, said in words."""


# ---------------------------------------------------------------- calling the student's code

def _call(fn, case: Case, timeout: float, copies: bool = True):
    """``fn(*case.args, **case.kwargs)`` (on copies of the arguments unless ``copies`` is
    False), stopped after ``timeout`` seconds where a timer can interrupt it (the main
    thread, as in a notebook)."""
    args, kwargs = (copy.deepcopy(case.args), copy.deepcopy(case.kwargs)) if copies else (case.args, case.kwargs)
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return fn(*args, **kwargs)

    def _alarm(signum, frame):
        raise _TimedOut()

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return fn(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _with_grad(case: Case) -> tuple[Case, list]:
    """The case with each floating tensor argument a fresh leaf that requires grad."""
    leaves = []

    def leaf(v):
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            v = v.detach().clone().requires_grad_(True)
            leaves.append(v)
        return v

    return Case(tuple(leaf(a) for a in case.args), {k: leaf(v) for k, v in case.kwargs.items()}, case.label), leaves


def _gradients(fn, case: Case, timeout: float):
    """The gradients of a fixed random weighting of ``fn``'s (first) output with respect to
    each floating tensor argument."""
    case, leaves = _with_grad(case)
    out = _call(fn, case, timeout, copies=False)
    out = out[0] if isinstance(out, tuple) else out
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return None
    weights = torch.rand(out.shape, generator=torch.Generator().manual_seed(0), dtype=out.dtype)
    grads = torch.autograd.grad((out * weights).sum(), leaves, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for g, x in zip(grads, leaves)]


# ---------------------------------------------------------------- comparing results

def _show(value) -> str:
    if isinstance(value, torch.Tensor):
        body = np.array2string(value.detach().cpu().double().numpy(), precision=4, threshold=8, edgeitems=2)
        return f"tensor{body} (shape {tuple(value.shape)}, {value.dtype})".replace("\n", " ")
    if isinstance(value, np.ndarray):
        return f"array{np.array2string(value, precision=4, threshold=8, edgeitems=2)} (shape {value.shape})"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = repr(value)
    return text if len(text) <= 80 else f"a {type(value).__name__}"


def _compare(expected, got, atol: float, rtol: float, where: str = "the result") -> None:
    """Raise ``_Wrong`` with what differs, or return quietly when ``got`` matches."""
    if isinstance(expected, tuple):
        if not isinstance(got, tuple) or len(got) != len(expected):
            raise _Wrong(f"{where} should be a tuple of {len(expected)}, got {_show(got)}")
        for i, (e, g) in enumerate(zip(expected, got)):
            _compare(e, g, atol, rtol, f"{where}[{i}]")
        return
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            raise _Wrong(f"{where} should be a torch tensor, got {_show(got)}")
        if got.shape != expected.shape:
            raise _Wrong(f"{where} should have shape {tuple(expected.shape)}, got shape {tuple(got.shape)}")
        if got.dtype != expected.dtype:
            raise _Wrong(f"{where} should have dtype {expected.dtype}, got {got.dtype}")
        e, g = expected.detach().cpu(), got.detach().cpu()
        if g.is_floating_point() and not torch.isfinite(g).all() and torch.isfinite(e).all():
            raise _Wrong(f"{where} holds NaN or infinity: {_show(got)}")
        same = torch.allclose(g.double(), e.double(), atol=atol, rtol=rtol, equal_nan=True) \
            if e.is_floating_point() else torch.equal(g, e)
        if not same:
            raise _Wrong(f"{where}: expected {_show(expected)}, got {_show(got)}")
        return
    if isinstance(expected, np.ndarray):
        got_array = np.asarray(got) if isinstance(got, (np.ndarray, list)) else None
        if got_array is None or got_array.shape != expected.shape:
            raise _Wrong(f"{where} should be an array of shape {expected.shape}, got {_show(got)}")
        if not np.allclose(got_array.astype(float), expected.astype(float), atol=atol, rtol=rtol, equal_nan=True):
            raise _Wrong(f"{where}: expected {_show(expected)}, got {_show(got)}")
        return
    if isinstance(expected, (bool, np.bool_)):
        if not isinstance(got, (bool, np.bool_)) or bool(got) != bool(expected):
            raise _Wrong(f"{where}: expected {expected}, got {_show(got)}")
        return
    if isinstance(expected, (int, float, np.number)):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float, np.number)):
            raise _Wrong(f"{where} should be a number, got {_show(got)}")
        if math.isnan(float(expected)) or math.isnan(float(got)):
            if math.isnan(float(expected)) != math.isnan(float(got)):
                raise _Wrong(f"{where}: expected {_show(float(expected))}, got {_show(float(got))}")
            return
        if not math.isclose(float(got), float(expected), rel_tol=rtol, abs_tol=atol):
            raise _Wrong(f"{where}: expected {_show(float(expected))}, got {_show(float(got))}")
        return
    if got != expected:
        raise _Wrong(f"{where}: expected {_show(expected)}, got {_show(got)}")


def _same(a, b, ex: Exercise) -> bool:
    try:
        _compare(a, b, ex.atol, ex.rtol)
        return True
    except _Wrong:
        return False


# ---------------------------------------------------------------- the check

def _signature_problem(fn, ex: Exercise, case: Case) -> str | None:
    try:
        inspect.signature(fn).bind(*case.args, **case.kwargs)
    except TypeError:
        try:
            wanted = str(inspect.signature(ex.reference))
        except (TypeError, ValueError):
            wanted = "the arguments of the stub"
        return f"{ex.name} takes the wrong arguments: it is called as {ex.name}{wanted}"
    except ValueError:  # a builtin without a signature: let the call decide
        return None
    return None


def _first_failure(fn, ex: Exercise, case: Case, timeout: float) -> str | None:
    """What is wrong with ``fn`` on ``case`` (None when it agrees with the reference)."""
    expected = ex.reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
    got = _call(fn, case, timeout)
    try:
        _compare(expected, got, ex.atol, ex.rtol)
    except _Wrong as wrong:
        return str(wrong)
    if ex.grad:
        want = _gradients(ex.reference, case, timeout)
        have = _gradients(fn, case, timeout)
        if have is None:
            return "the result carries no gradient: keep it a torch computation (no .item(), .detach() or numpy)"
        for i, (w, h) in enumerate(zip(want, have)):
            if not torch.allclose(h.double(), w.double(), atol=ex.atol * 10, rtol=ex.rtol * 10):
                return f"the values agree but the gradient with respect to argument {i} does not: " \
                       f"expected {_show(w)}, got {_show(h)}"
    return None


def _hint(fn, ex: Exercise, case: Case, timeout: float) -> str:
    """The hint of the known mistake whose result on ``case`` equals ``fn``'s, if any."""
    try:
        got = _call(fn, case, timeout)
    except Exception:
        return ""
    for mistake in ex.mistakes:
        try:
            wrong = mistake.fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        except Exception:
            continue
        expected = ex.reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        if _same(wrong, got, ex) and not _same(expected, got, ex):
            return mistake.hint
    return ""


def evaluate(ex: Exercise, fn, timeout: float = 5.0) -> Result:
    """Run ``fn`` through exercise ``ex``; the ``Result`` says which outcome and why. Warnings
    (an overflow in numpy, say) are silenced: the outcome says what went wrong."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _evaluate(ex, fn, timeout)


def _evaluate(ex: Exercise, fn, timeout: float) -> Result:
    if not callable(fn):
        return Result(NOT_YET_RIGHT, f"{ex.name}: pass your function itself, got {_show(fn)}")
    cases = ex.cases()
    for number, case in enumerate(cases, 1):
        label = f"case {number} of {len(cases)}" + (f" ({case.label})" if case.label else "")
        problem = _signature_problem(fn, ex, case)
        if problem:
            return Result(NOT_YET_RIGHT, problem)
        try:
            failure = _first_failure(fn, ex, case, timeout)
        except NotImplementedError:
            return Result(NOT_DONE, "")
        except _TimedOut:
            return Result(NOT_YET_RIGHT, f"{label}: stopped after {timeout:g} s (an endless loop?)")
        except RecursionError:
            return Result(NOT_YET_RIGHT, f"{label}: your function calls itself without end")
        except Exception as error:  # the student's code raised: say what, never a traceback
            return Result(NOT_YET_RIGHT, f"{label}: your function raised {type(error).__name__}: "
                                         f"{str(error).splitlines()[0][:200] if str(error) else ''}")
        if failure:
            return Result(NOT_YET_RIGHT, f"{label}: {failure}", _hint(fn, ex, case, timeout))
    checked = "values, shapes and dtypes" + (" and gradients" if ex.grad else "")
    return Result(PASSED, f"{len(cases)} cases agree with the course's helper ({checked})")


def helper_name(ex: Exercise) -> str:
    return f"{ex.reference.__module__}.{ex.reference.__qualname__}"


def report(ex: Exercise, result: Result) -> str:
    """The lines a student reads for ``result``."""
    if result.outcome == NOT_DONE:
        return (f"Not done yet: {ex.name} still raises NotImplementedError. The notebook goes on with "
                f"the course's version ({helper_name(ex)}); the solution is folded below.")
    if result.outcome == PASSED:
        return f"Passed: {ex.name}: {result.message}. The notebook goes on with your function."
    lines = [f"Not yet right: {result.message}"]
    if result.hint:
        lines.append(f"Hint: {result.hint}")
    lines.append(f"The notebook goes on with the course's version ({helper_name(ex)}) until yours passes.")
    return "\n".join(lines)
