"""The training loop's one step counter: EpochPlan (step ↔ epoch) and the micro-batch stream it drives."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from pdfnet.engine.distributed import ResumableDistributedSampler
from pdfnet.engine.schedule import EpochPlan
from pdfnet.engine.trainer import micro_batches


def test_epoch_plan_locates_steps_in_uneven_epochs():
    plan = EpochPlan((4, 2, 4))  # e.g. a hard-half epoch in the middle
    assert plan.total == 10
    located = [plan.locate(s) for s in (0, 3, 4, 5, 6, 9, 10)]
    assert located == [(0, 0), (0, 3), (1, 0), (1, 1), (2, 0), (2, 3), (3, 0)]
    assert [s for s in range(11) if plan.is_epoch_end(s)] == [4, 6, 10]
    assert EpochPlan.uniform(3, 4, max_steps=5).total == 5 and EpochPlan.uniform(3, 4).steps == (3, 3, 3, 3)
    with pytest.raises(ValueError, match="every epoch needs"):
        EpochPlan((3, 0))


class _Index(Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return {"i": torch.tensor(i)}


def _stream(plan: EpochPlan, accum: int, start: int) -> list[list[int]]:
    loader = DataLoader(_Index(), batch_size=2, sampler=ResumableDistributedSampler(_Index(), seed=3),
                        drop_last=True)
    return [b["i"].tolist() for b in micro_batches(loader, plan, accum, start_step=start)]


def test_micro_batches_follow_the_plan_and_resume_mid_epoch():
    """Epoch e is permutation e cut to plan.steps[e] * accum micro-batches; starting at step s gives the
    stream's tail from micro-batch s * accum on."""
    plan = EpochPlan((2, 1, 2))  # 5 micro-batches per epoch available, 4, 2 and 4 used (accum 2)
    full = _stream(plan, accum=2, start=0)
    assert len(full) == 2 * plan.total
    perms = []
    for epoch in range(3):
        s = ResumableDistributedSampler(_Index(), seed=3)
        s.set_epoch(epoch)
        perms.append(list(s))
    expected = [perms[e][k:k + 2] for e, n in enumerate(plan.steps) for k in range(0, 2 * 2 * n, 2)]
    assert full == expected
    for start in range(plan.total):
        assert _stream(plan, accum=2, start=start) == full[2 * start:]
    assert list(itertools.islice(_stream(plan, accum=2, start=plan.total), 1)) == []
