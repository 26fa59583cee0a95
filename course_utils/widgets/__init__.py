"""Sliders where moving one number is the lesson, one module per notebook.

Each ``nbNN`` module defines drawing functions ``update(value, ax)`` (one setting, drawn on a
matplotlib Axes, titled with what it shows) that answer in well under a second (exact or precomputed computation, no training), and
``WIDGETS``: for each function, its slider and three or four settings for the static
figure that a saved notebook shows instead (GitHub, the site, CI). In a notebook::

    from course_utils import widgets
    widgets.show("dpo_optimum")          # a live slider in JupyterLab or Colab; a note elsewhere
    widgets.static("dpo_optimum")        # one figure: the module's settings, side by side

``tests/test_widgets.py`` times every update function at every setting.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

from ..progress import headless

__all__ = ["Widget", "show", "static", "get", "names"]


@dataclass(frozen=True)
class Widget:
    """``update(value, ax)`` draws one setting on ``ax``. The slider runs
    from ``low`` to ``high`` in steps of ``step`` (on a log-10 scale when ``log``), starting
    at ``value``; ``settings`` are the values of the static figure."""
    name: str
    notebook: str
    update: Callable
    label: str
    low: float
    high: float
    step: float
    value: float
    settings: tuple
    log: bool = False


_REGISTRY: dict[str, Widget] = {}


def _registry() -> dict[str, Widget]:
    if not _REGISTRY:
        for module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
            for w in importlib.import_module(f"{__name__}.{module}").WIDGETS:
                if w.name in _REGISTRY:
                    raise ValueError(f"widgets: two widgets are named {w.name!r}")
                _REGISTRY[w.name] = w
    return _REGISTRY


def names() -> list[str]:
    """Every widget's name, in notebook order."""
    return sorted(_registry(), key=lambda n: (_registry()[n].notebook, n))


def get(name: str) -> Widget:
    """The widget called ``name``."""
    if not isinstance(name, str):
        raise TypeError(f"widgets.get: name must be a widget's name (a string), got {type(name).__name__}")
    if name not in _registry():
        raise ValueError(f"widgets.get: name must be one of {names()}, got {name!r}")
    return _registry()[name]


def static(name: str, width: float = 4.0, height: float = 3.2) -> None:
    """Show one figure with the widget drawn at each of its settings, side by side."""
    import matplotlib.pyplot as plt

    w = get(name)
    fig, axes = plt.subplots(1, len(w.settings), figsize=(width * len(w.settings), height), squeeze=False)
    for value, ax in zip(w.settings, axes[0]):
        w.update(value, ax)
    fig.tight_layout()
    plt.show()


def show(name: str) -> None:
    """A live slider in JupyterLab or Colab; one line saying so where no widget can run
    (a headless run, or ipywidgets missing)."""
    import matplotlib.pyplot as plt

    w = get(name)
    try:
        import ipywidgets
    except ImportError:
        ipywidgets = None
    if ipywidgets is None or headless():
        print(f"(no live widget here: open this notebook in JupyterLab or Colab to move {w.label})")
        return
    if w.log:
        import math
        slider = ipywidgets.FloatLogSlider(value=w.value, base=10, min=math.log10(w.low), max=math.log10(w.high),
                                           step=w.step, description=w.label)
    elif all(float(x).is_integer() for x in (w.low, w.high, w.step, w.value)):
        slider = ipywidgets.IntSlider(value=int(w.value), min=int(w.low), max=int(w.high), step=int(w.step),
                                      description=w.label)
    else:
        slider = ipywidgets.FloatSlider(value=w.value, min=w.low, max=w.high, step=w.step, description=w.label)

    def draw(value):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        w.update(value, ax)
        plt.show()

    ipywidgets.interact(draw, value=slider)
