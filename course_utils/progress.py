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


def headless() -> bool:
    """True where a live bar would be noise: CI, or a run that saves its outputs."""
    return bool(os.environ.get("CI")) or os.environ.get("COURSE_PROGRESS", "").strip().lower() == "summary"


def format_seconds(seconds: float) -> str:
    """``42s``, ``7m12s``, ``1h03m``."""
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
        if not isinstance(total, int) or total < 0:
            raise ValueError(f"Progress: total must be a non-negative int, got {total!r}")
        self.total, self.desc, self.unit, self.n, self.start_n = total, desc, unit, initial, initial
        self.postfix: dict = {}
        self.started = time.time()
        self.closed = False
        self.bar = None if headless() else tqdm(total=total, initial=initial, desc=desc, unit=unit)

    def update(self, n: int = 1, **postfix):
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
    """Iterate over ``iterable`` with a ``Progress``: ``for x in progress(xs, "scoring"): ...``."""
    if total is None:
        try:
            total = len(iterable)
        except TypeError as err:
            raise TypeError("progress: iterable has no len(); pass total=") from err
    with Progress(total, desc, unit) as bar:
        for item in iterable:
            yield item
            bar.update()
