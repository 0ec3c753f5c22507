"""The 3×3 Sobel kernels, one owner: the integrity-prior loss convolves the depth target with them and
the official-checkpoint loader checks the release's two frozen copies against them."""

from __future__ import annotations

import torch

__all__ = ["SOBEL_X", "SOBEL_Y", "sobel_kernels"]

SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
SOBEL_Y = ((-1.0, -2.0, -1.0), (0.0, 0.0, 0.0), (1.0, 2.0, 1.0))


def sobel_kernels() -> torch.Tensor:
    """``[2, 1, 3, 3]`` fp32: the x and y Sobel kernels stacked as two output channels."""
    return torch.tensor([SOBEL_X, SOBEL_Y], dtype=torch.float32).unsqueeze(1)
