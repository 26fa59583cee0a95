"""The course's versions that notebooks 05 and 07 go on with (course_utils.exercises.nb05 and nb07) refuse bad
input with an error that names the argument, like the helpers they wrap."""

import pytest
import torch

from course_utils.exercises import nb05 as ex05
from course_utils.exercises import nb07 as ex07


def test_the_exercise_references_refuse_bad_input():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="mask"):
        ex05.clipped_surrogate(x, x, x, torch.ones(2, 2))
    with pytest.raises(ValueError, match="clip"):
        ex05.value_loss(x, x, x, torch.ones(2, 3), clip=-0.2)
    with pytest.raises(TypeError, match="logits"):
        ex07.sequence_logps([[0.0]], torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        ex07.sequence_logps(torch.zeros(1, 3, 4), torch.full((1, 3), 9), torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="completion_mask"):
        ex07.sequence_logps(torch.zeros(1, 3, 4), torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 2, dtype=torch.long))
