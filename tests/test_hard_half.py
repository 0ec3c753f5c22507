"""``train.hard_half``: the release's ``update_half`` bookkeeping and the sampler's subset epochs."""

from __future__ import annotations

import random

import pytest
import torch

from pdfnet.data.hard_half import HardHalf, is_hard_epoch, restrict
from pdfnet.engine.distributed import ResumableDistributedSampler
from pdfnet.errors import UserError


def _loss(epoch: int, i: int) -> float:
    return random.Random(epoch * 1000 + i).choice([0.1, 0.2, 0.3, 0.5, 0.8])  # ties on purpose


def _release_update_half(n: int, epochs: int, seed: int) -> list[list[int]]:
    """Transcription of the release's loop (main.py) at batch size 1: names are indices here."""
    trained_per_epoch = []
    large_loss_name_list: list[int] = []
    for epoch in range(epochs):
        g = torch.Generator()
        g.manual_seed(seed + epoch)
        order = torch.randperm(n, generator=g).tolist()  # the shuffled loader
        loss_list, trained = [], []
        for name in order:
            if epoch % 2 == 1:
                if name not in large_loss_name_list:
                    continue
                large_loss_name_list.remove(name)
            trained.append(name)
            loss_list.append({"image_name": name, "loss": _loss(epoch, name)})
        trained_per_epoch.append(trained)
        large_loss_list = sorted(loss_list, key=lambda i: i["loss"], reverse=True)
        large_loss_name_list = [item["image_name"] for item in large_loss_list][: len(loss_list) // 2]
    return trained_per_epoch


class _Data(torch.utils.data.Dataset):
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def test_same_epochs_as_the_release_loop():
    n, epochs, seed = 23, 6, 3
    ref = _release_update_half(n, epochs, seed)
    sampler = ResumableDistributedSampler(_Data(n), shuffle=True, seed=seed)
    hh = HardHalf()
    ours = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        sampler.set_subset(hh.allowed(epoch))
        trained = list(sampler)
        assert len(sampler) == len(trained)
        for i in trained:
            hh.record([i], _loss(epoch, i))
        hh.end_epoch()
        ours.append(trained)
    assert ours == ref
    assert [len(t) for t in ours] == [23, 11, 23, 11, 23, 11]
    assert [is_hard_epoch(e) for e in range(4)] == [False, True, False, True]


def test_subset_is_split_over_ranks_and_resumes_mid_epoch():
    data = _Data(20)
    subset = [3, 5, 7, 11, 13, 17, 19]
    one = ResumableDistributedSampler(data, seed=1)
    one.set_epoch(1)
    one.set_subset(subset)
    order = list(one)
    full = ResumableDistributedSampler(data, seed=1)
    full.set_epoch(1)
    assert order == restrict(list(full), subset)  # the epoch's own order, filtered
    ranks = []
    for r in range(2):
        s = ResumableDistributedSampler(data, num_replicas=2, rank=r, seed=1)
        s.set_epoch(1)
        s.set_subset(subset)
        ranks.append(list(s))
        assert len(s) == 4
    assert sorted(set(ranks[0] + ranks[1])) == subset and len(ranks[0] + ranks[1]) == 8  # one padded
    assert [x for pair in zip(*ranks) for x in pair][:7] == order
    one.set_start(3)
    assert list(one) == order[3:] and len(one) == 4
    one.set_epoch(2)  # a new epoch clears the subset
    assert len(one) == 20


def test_state_round_trip_and_ddp_records():
    hh = HardHalf()
    hh.record([4, 5], 0.7)
    hh.record([6], 0.1)
    other = HardHalf()
    other.load_state_dict(hh.state_dict())
    assert other.records == hh.records and other.hard is None and other.allowed(1) is None
    # DDP: every rank passes the gathered records (rank order) and gets the same hard half
    assert other.end_epoch(hh.records + [(7, 0.9), (8, 0.2)]) == [7, 4]
    assert other.allowed(1) == [7, 4] and other.allowed(2) is None and other.records == []


def test_record_batch_needs_index_and_target():
    hh = HardHalf()
    hh.record_batch({"index": torch.tensor([2, 5])}, {"target": torch.tensor(0.25), "total": torch.ones(())})
    assert hh.records == [(2, 0.25), (5, 0.25)]
    with pytest.raises(UserError, match="train.hard_half needs samples with an 'index'"):
        hh.record_batch({"image": torch.zeros(1)}, {"target": torch.tensor(0.1)})
