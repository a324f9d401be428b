import math

import pytest

from unetkit.training.lr_policy import LRPolicyWithPatience, schedule_factor


def test_patience_policy_divides_only_after_patience_without_improvement():
    p = LRPolicyWithPatience(1.0, patience=2, lr_divisor=5)
    assert not p.step(1.0)  # 1 loss since reset: not > patience
    assert not p.step(0.5)  # 2: not > 2
    assert not p.step(0.4)  # improving: min(last 2) == min(all)
    assert not p.step(0.45)  # min(last 2)=0.4 == min(all)
    assert p.step(0.6)  # min(0.45, 0.6) > 0.4
    assert p.lr == pytest.approx(0.2) and p.last_reset_idx == 5
    assert not p.step(0.7)  # just reset: 1 since reset
    assert not p.step(0.8)  # 2 since reset
    assert p.step(0.9)
    assert p.lr == pytest.approx(0.04)
    q = LRPolicyWithPatience(1.0, 2, 5)
    q.load_state_dict(p.state_dict())
    assert q.state_dict() == p.state_dict()


def test_default_patience_practically_never_fires():
    p = LRPolicyWithPatience(0.001, 1000, 5)
    assert not any(p.step(float(i)) for i in range(1000))


def test_schedule_factors():
    assert schedule_factor("none", 50, 100) == 1.0
    assert schedule_factor("none", 0, 100, warmup_iters=4) == 0.25
    assert schedule_factor("cosine", 0, 100) == pytest.approx(1.0)
    assert schedule_factor("cosine", 50, 100) == pytest.approx(0.5)
    assert schedule_factor("cosine", 100, 100, min_lr_ratio=0.1) == pytest.approx(0.1)
    assert schedule_factor("poly", 50, 100, power=1.0) == pytest.approx(0.5)
    assert schedule_factor("poly", 75, 100, power=0.9) == pytest.approx(0.25**0.9)
    vals = [schedule_factor("cosine", i, 20) for i in range(21)]
    assert all(a >= b for a, b in zip(vals, vals[1:])) and not math.isnan(vals[-1])
