"""pdfnet.utils.ranks: torchrun's environment and the one way work is split over ranks."""

import pytest

from pdfnet.data import ShardSampler
from pdfnet.errors import UserError
from pdfnet.utils.ranks import rank_shard, torchrun_env


def test_rank_shard_is_disjoint_and_covering():
    parts = [list(rank_shard(7, r, 3)) for r in range(3)]
    assert parts == [[0, 3, 6], [1, 4], [2, 5]]
    assert [list(ShardSampler(7, r, 3)) for r in range(3)] == parts
    for rank, world in ((2, 2), (-1, 2), (0, 0)):
        with pytest.raises(UserError, match="invalid RANK"):
            rank_shard(4, rank, world)


def test_torchrun_env(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert torchrun_env() == (0, 1, 0)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert torchrun_env() == (3, 4, 3)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert torchrun_env() == (3, 4, 1)
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(UserError, match="integers"):
        torchrun_env()
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(UserError, match="invalid RANK"):
        torchrun_env()
