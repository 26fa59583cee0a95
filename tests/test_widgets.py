"""Every widget: its update draws each setting in well under a second on this 2-core machine,
and its slider is well formed. Times are printed (pytest -s), not only asserted."""

import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course_utils import widgets  # noqa: E402


@pytest.mark.parametrize("name", widgets.names())
def test_update_answers_in_well_under_a_second(name):
    w = widgets.get(name)
    assert w.low <= w.value <= w.high and all(w.low <= v <= w.high for v in w.settings)
    assert 3 <= len(w.settings) <= 4
    w.update(w.value, plt.subplots()[1])  # warm caches and imports
    worst = 0.0
    for value in (w.low, w.high, *w.settings):
        fig, ax = plt.subplots()
        start = time.perf_counter()
        w.update(value, ax)
        worst = max(worst, time.perf_counter() - start)
        assert ax.get_title() and ax.get_ylabel(), f"{name}: each setting is titled and its y-axis labelled"
        plt.close(fig)
    print(f"{name}: slowest update {worst * 1000:.0f} ms")
    assert worst < 0.5, f"{name}: an update took {worst:.2f} s (budget: well under 1 s)"


def test_misuse():
    with pytest.raises(ValueError, match="name must be one of"):
        widgets.get("nope")
    with pytest.raises(TypeError, match="name must be"):
        widgets.get(3)


def test_the_course_has_its_widgets_and_each_notebook_shows_its_own():
    """At least five sliders; each appears in its notebook, as a live slider and as a static figure."""
    import json
    from pathlib import Path

    assert len(widgets.names()) >= 5
    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    for name in widgets.names():
        path, = notebooks.glob(f"{widgets.get(name).notebook}_*.ipynb")
        code = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        assert f'widgets.show("{name}")' in code and f'widgets.static("{name}")' in code, (name, path.name)
