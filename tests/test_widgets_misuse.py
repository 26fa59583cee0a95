"""Bad input to the widgets' doors, and to RAFT's filter: a clear error naming the argument."""

import numpy as np

from course_utils import raft, widgets
from misuse import Case

CASES = [
    Case("widgets.get", lambda: widgets.get("no_such_widget"), ValueError, "name"),
    Case("widgets.get", lambda: widgets.get(None), TypeError, "name"),
    Case("widgets.show", lambda: widgets.show("no_such_widget"), ValueError, "name"),
    Case("widgets.static", lambda: widgets.static(3), TypeError, "name"),
    Case("raft.keep_top_k", lambda: raft.keep_top_k([1.0, 2.0], [True, True], samples_per_prompt=3), ValueError,
         "samples_per_prompt"),
    Case("raft.keep_top_k", lambda: raft.keep_top_k([1.0, float("nan")], [True, True], 2), ValueError, "rewards"),
    Case("raft.keep_top_k", lambda: raft.keep_top_k([1.0, 2.0], [1, 0], 2), ValueError, "finished"),
    Case("raft.keep_top_k", lambda: raft.keep_top_k(np.zeros(4), np.ones(4, bool), 2, k=0), ValueError, "k"),
]


def test_misuse_of_the_widgets_and_the_raft_filter():
    for case in CASES:
        case.run()
