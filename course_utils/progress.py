"""Progress bars that read well live and in a saved notebook.

In JupyterLab and Colab a long loop shows a live ``tqdm.auto`` bar. A bar saved in
a notebook file, though, shows its first frame (``0%| 0/300``) in every viewer
without widgets (GitHub, nbviewer, HTML). So in headless runs (``$CI`` set, or
``COURSE_PROGRESS=summary`` as ``make notebooks`` sets it) there is no bar, and
every loop prints one line when it ends instead:

    SFT (masked): 300/300 steps in 7m12s (loss 2.314)
"""

from __future__ import annotations

import os
import time

from tqdm.auto import tqdm

from . import _checks


def headless() -> bool:
    """True where a live bar would be noise: CI, or a run that saves its outputs."""
    return bool(os.environ.get("CI")) or os.environ.get("COURSE_PROGRESS", "").strip().lower() == "summary"


def format_seconds(seconds: float) -> str:
    """``42s``, ``7m12s``, ``1h03m``."""
    _checks.number("format_seconds", "seconds", seconds, nonnegative=True)
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """A counter from ``initial`` to ``total`` with a live bar, or a summary line when headless.

    ``update(n, **postfix)`` advances it and shows the postfix (e.g. the loss);
    ``close()`` ends it (and prints the summary line when headless). Also a context manager.
    """

    def __init__(self, total: int, desc: str, unit: str = "it", initial: int = 0):
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise ValueError(f"Progress: total must be a non-negative int, got {total!r}")
        _checks.string("Progress", "desc", desc)
        _checks.string("Progress", "unit", unit)
        _checks.integer("Progress", "initial", initial, minimum=0)
        if initial > total:
            raise ValueError(f"Progress: initial={initial} is more than total={total}")
        self.total, self.desc, self.unit, self.n, self.start_n = total, desc, unit, initial, initial
        self.postfix: dict = {}
        self.started = time.time()
        self.closed = False
        self.bar = None if headless() else tqdm(total=total, initial=initial, desc=desc, unit=unit)

    def update(self, n: int = 1, **postfix):
        _checks.integer("Progress.update", "n", n, minimum=0)
        self.n += n
        if postfix:
            self.postfix = postfix
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
            return
        extra = ", ".join(f"{k} {v}" for k, v in self.postfix.items())
        resumed = f", resumed at {self.start_n}" if self.start_n else ""
        print(f"{self.desc}: {self.n}/{self.total} {self.unit} in {format_seconds(time.time() - self.started)}"
              f"{resumed}{f' ({extra})' if extra else ''}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress(iterable, desc: str, total: int | None = None, unit: str = "it"):
    """Iterate over ``iterable`` with a ``Progress``: ``for x in progress(xs, "scoring"): ...``.

    The arguments are checked when ``progress`` is called, not at the first item."""
    if not hasattr(iterable, "__iter__"):
        raise TypeError(f"progress: iterable must be something to loop over, got {type(iterable).__name__}")
    if total is None:
        try:
            total = len(iterable)
        except TypeError as err:
            raise TypeError("progress: iterable has no len(); pass total=") from err
    _checks.integer("progress", "total", total, minimum=0)
    _checks.string("progress", "desc", desc)
    return _iterate(iterable, Progress(total, desc, unit))


def _iterate(iterable, bar: Progress):
    with bar:
        for item in iterable:
            yield item
            bar.update()
