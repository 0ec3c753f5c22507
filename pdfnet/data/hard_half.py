"""``train.hard_half``: the release's ``update_half`` (hard-example epochs), kept by sample index.

The release, when ``--update_half`` is on, records after every training batch the batch's image names and its
``target`` loss (the P0 segmentation term: structure + 0.5·SSIM of the final output). At the end of **every**
epoch it sorts that epoch's records by loss, highest first (a stable sort), and keeps the first half
(``len // 2``). In each **odd** epoch (0-based: 1, 3, 5, ...) it walks the epoch's shuffled order as usual
but trains only on the samples in that list; even epochs train on everything. So an odd epoch trains on the
hardest half of the epoch before it, in this epoch's shuffled order, and has about half the steps.

:class:`HardHalf` keeps the same books by dataset index. The loss recorded for a sample is the ``target`` loss
of the micro-batch it was in — exactly the release's at batch size 1 (the paper recipe); with larger batches
each sample carries its batch's loss (the release compares whole batches by their name lists, which a fresh
shuffle almost never repeats). Under DDP every rank records its own samples and :meth:`end_epoch` takes the
records of all ranks in rank order (pass them gathered), so every rank agrees on the hard set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pdfnet.errors import UserError


def is_hard_epoch(epoch: int) -> bool:
    """True for the epochs that train only on the hard half (odd, 0-based), as the release."""
    return epoch % 2 == 1


class HardHalf:
    """Per-epoch loss records → the hard half used by the next odd epoch. Checkpointable."""

    def __init__(self) -> None:
        self.records: list[tuple[int, float]] = []
        self.hard: list[int] | None = None

    def record(self, indices: Iterable[int], loss: float) -> None:
        """Record the micro-batch of dataset ``indices`` with its ``target`` loss (a float)."""
        loss = float(loss)
        self.records.extend((int(i), loss) for i in indices)

    def record_batch(self, batch: Mapping, terms: Mapping) -> None:
        """Record a training micro-batch: its samples' ``index`` and the loss term ``target`` (P0's)."""
        if "index" not in batch or "target" not in terms:
            raise UserError("train.hard_half needs samples with an 'index' and a loss with a 'target' term "
                            "(the P0 loss), as DISDataset and PDFNetLoss give")
        self.record(batch["index"].tolist(), float(terms["target"]))

    def end_epoch(self, records: Sequence[tuple[int, float]] | None = None) -> list[int]:
        """Close the epoch: the hard half = the first ``len // 2`` records by descending loss (stable).

        Args:
            records: every rank's records in rank order (DDP); default this process's own.

        Returns:
            The hard half's indices (also kept for :meth:`allowed`).
        """
        recs = list(self.records if records is None else records)
        ranked = sorted(recs, key=lambda r: r[1], reverse=True)
        self.hard = [i for i, _ in ranked[: len(ranked) // 2]]
        self.records = []
        return self.hard

    def allowed(self, epoch: int) -> list[int] | None:
        """The indices epoch ``epoch`` may train on (None = all): the hard half in odd epochs, once known."""
        if is_hard_epoch(epoch) and self.hard is not None:
            return list(self.hard)
        return None

    def state_dict(self) -> dict:
        return {"records": [[i, loss] for i, loss in self.records], "hard": self.hard}

    def load_state_dict(self, state: dict) -> None:
        self.records = [(int(i), float(loss)) for i, loss in state.get("records", [])]
        hard = state.get("hard")
        self.hard = None if hard is None else [int(i) for i in hard]


def restrict(order: Sequence[int], allowed: Iterable[int] | None) -> list[int]:
    """``order`` keeping only ``allowed`` indices (all when None), in ``order``'s order — the release's
    skip of every sample that is not in the list."""
    if allowed is None:
        return list(order)
    keep = set(allowed)
    return [i for i in order if i in keep]


__all__ = ["HardHalf", "is_hard_epoch", "restrict"]
