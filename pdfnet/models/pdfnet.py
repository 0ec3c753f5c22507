"""PDFNet composed from injected parts: encoder → mask decoder → up-conv head (+ train-only depth decoder)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .decoder import MaskDecoder
from .depth_decoder import DepthDecoder
from .encoder import ThreeStreamEncoder
from .head import UpConvHead

__all__ = ["PDFNet", "PDFNetOutput"]


@dataclass
class PDFNetOutput:
    """What :class:`PDFNet` returns, in train and eval alike (all logits, fp32 unless autocast).

    Attributes:
        logits: P0 [B, 1, S, S].
        side_logits: (P1, ..., P5) at native sizes (S/4, S/8, S/16, S/32, S/32 at multiples of 256).
        depth_logits: (Q0, ..., Q4) [B,1,S/2], [S/8], [S/16], [S/32], [S/64], or None when not computed.
    """

    logits: torch.Tensor
    side_logits: tuple[torch.Tensor, ...]
    depth_logits: tuple[torch.Tensor, ...] | None = None

    @property
    def all_logits(self) -> tuple[torch.Tensor, ...]:
        """(P0, P1, ..., P5)."""
        return (self.logits, *self.side_logits)


class PDFNet(nn.Module):
    """The network.

    Args:
        encoder: three-stream encoder (backbone + projections).
        decoder: mask decoder (FSE ×4).
        head: up-conv head producing P0.
        depth_decoder: train-only depth decoder, or None (inference-only model).
    """

    def __init__(
        self,
        *,
        encoder: ThreeStreamEncoder,
        decoder: MaskDecoder,
        head: UpConvHead,
        depth_decoder: DepthDecoder | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.head = head
        self.depth_decoder = depth_decoder

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute backbone blocks in backward (saves most of the activation memory)."""
        self.encoder.backbone.set_grad_checkpointing(enable)

    def check_input_size(self, size: int | tuple[int, int]) -> None:
        """Raise ``ValueError`` if an input of this size (S or (H, W)) is unsupported."""
        h, w = (size, size) if isinstance(size, int) else size
        self.encoder.check_size(int(h), int(w))

    def inference_parameters(self) -> int:
        """Parameter count of the inference network (everything but the depth decoder)."""
        skip = {id(p) for p in self.depth_decoder.parameters()} if self.depth_decoder is not None else set()
        return sum(p.numel() for p in self.parameters() if id(p) not in skip)

    def forward(
        self, image: torch.Tensor, depth: torch.Tensor, with_depth_decoder: bool | None = None
    ) -> PDFNetOutput:
        """Segment.

        Args:
            image: [B, 3, S, S] ImageNet-normalised RGB.
            depth: [B, 1, S, S] pseudo-depth (min–max normalised over the batch inside).
            with_depth_decoder: run the train-only depth decoder (its Q outputs feed the SiLog loss);
                None = in training mode only. An explicit value is obeyed in either mode (True on a model
                built without one raises ``ValueError``).

        Returns:
            :class:`PDFNetOutput`.
        """
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be [B, 3, S, S], got {tuple(image.shape)}")
        if depth.ndim != 4 or depth.shape[1] != 1:
            raise ValueError(f"depth must be [B, 1, S, S], got {tuple(depth.shape)}")
        feats = self.encoder(image, depth)
        dec = self.decoder(feats)
        p0 = self.head(image, feats.depth_in, dec.m1)
        run_depth = self.training if with_depth_decoder is None else with_depth_decoder
        q = None
        if run_depth:
            if self.depth_decoder is None:
                raise ValueError("this model was built without a depth decoder")
            q = self.depth_decoder(image, feats)
        return PDFNetOutput(p0, dec.side_logits, q)
