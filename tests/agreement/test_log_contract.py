import numpy as np
import pytest

from agreement.log import SplitLog


def test_splitlog_shapes_and_defaults():
    log = SplitLog("train", ["a", "b", "c"], np.array([0, 1, 2]), np.zeros((2, 4, 3)), [1, 2, 3, 4])
    assert (log.n_models, log.n_epochs, log.n_examples) == (2, 4, 3)
    assert log.logged.all() and log.correct.dtype == bool


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"correct": np.zeros((2, 3))}, "shape \\(K models"),
        ({"ids": ["a", "a", "b"]}, "unique"),
        ({"ids": ["a", "b"]}, "ids must have shape"),
        ({"epochs": [1, 2]}, "epochs must have shape"),
        ({"labels": np.zeros(2)}, "labels must have 3 rows"),
        ({"logged": np.ones((1, 4))}, "logged must have shape"),
        ({"pred": np.zeros((2, 4, 2))}, "pred must start with shape"),
    ],
)
def test_splitlog_rejects_misaligned(kwargs, match):
    base = dict(
        split="train",
        ids=["a", "b", "c"],
        labels=np.zeros(3),
        correct=np.zeros((2, 4, 3)),
        epochs=[1, 2, 3, 4],
    )
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        SplitLog(**base)
