import pytest

from unetkit.training.validation_schedule import ValidationSchedule, validation_iterations


@pytest.mark.parametrize(
    ("epochs", "iters", "val_every", "expected"),
    [
        (2, 4, 0.5, [2, 4, 6, 8]),
        (2, 3, 1.0, [3, 6]),
        (1, 4, 1 / 3, [2, 3, 4]),  # first iteration whose epoch_flt >= k * val_every
        (1, 10, 0.3, [3, 6, 9]),  # 0.6/0.3 = 1.999…: the 1e-9 makes it count
        (1, 2, 0.1, [1, 2]),  # at most one validation per iteration (catch-up)
        (3, 5, 2.0, [10]),
        (2, 5, 0.5, [3, 5, 8, 10]),  # 2.5 iterations per half epoch → validate at the next one
    ],
)
def test_eval_planner_table(epochs, iters, val_every, expected):
    assert validation_iterations(epochs, iters, val_every) == expected


def test_val_every_larger_than_epochs_never_validates_and_state_round_trips():
    assert validation_iterations(2, 4, 3.0) == []
    p = ValidationSchedule(2, 0.5)
    assert p.need_validation(0.5)
    p.validation_performed()
    q = ValidationSchedule(2, 0.5)
    q.load_state_dict(p.state_dict())
    assert not q.need_validation(0.75) and q.need_validation(1.0)
