"""Segmentation-style Swin Transformer, the PDFNet backbone (the release's ``models/swin_transformer.py``).

This is the mmseg/"Swin for detection" flavour the release uses, which differs from timm's
classification Swin in ways that change the output of the released weights:

* every block zero-pads its token map (after ``norm1``) right/bottom to a multiple of the window;
  padded tokens are *not* masked and act as keys;
* the window is never shrunk to the map size and the cyclic shift (window // 2) is always applied
  in odd blocks, with the −100 region mask built on the padded size (timm drops the shift and
  clamps the window when the map fits in one window);
* patch merging pads odd sizes;
* a learned absolute position embedding (1×C×56×56 for a 224 pretrain size) is bicubic-resized to
  the patch grid and added after patch-embed + LayerNorm;
* the four stage outputs are taken before patch merging, each through its own LayerNorm
  (``norm0..norm3``), as NCHW maps.

Parameter names follow the original Swin release (``patch_embed``, ``layers.i.blocks.j``,
``layers.i.downsample``, ``norm{i}``), so the ImageNet checkpoint and the PDFNet checkpoint load
with prefix changes only.

Window attention runs through ``F.scaled_dot_product_attention`` with the relative-position bias
(+ shift mask) as the additive ``attn_mask``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.checkpoint as torch_checkpoint
from timm.layers import DropPath, trunc_normal_
from torch import nn

__all__ = ["SwinTransformer", "swin_b", "swin_tiny_test", "relative_position_index"]


def relative_position_index(window: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The standard Swin index [window², window²] (int64) into the (2w−1)² bias table."""
    return torch.tensor(_relative_position_index_np(window), device=device or "cpu")


# Shape-only constants are cached as numpy arrays, never as tensors: a tensor made while tracing
# (torch.export / FakeTensor / functionalisation) would be a tensor subclass, and caching it would leak
# it into later eager calls.
@lru_cache(maxsize=8)
def _relative_position_index_np(window: int) -> np.ndarray:
    r = np.arange(window)
    coords = np.stack(np.meshgrid(r, r, indexing="ij")).reshape(2, -1)  # [2, N]
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)  # [2, N, N]
    out = rel[0] * (2 * window - 1) + rel[1]
    out.setflags(write=False)
    return out


@lru_cache(maxsize=64)
def _shift_mask_np(hp: int, wp: int, window: int, shift: int) -> np.ndarray:
    """Region mask for shifted windows on a padded hp×wp map: [nW, N, N] float32 with 0 / −100."""
    img = np.zeros((hp, wp), np.float32)
    cnt = 0
    bounds = ((0, hp - window), (hp - window, hp - shift), (hp - shift, hp))
    wbounds = ((0, wp - window), (wp - window, wp - shift), (wp - shift, wp))
    for h0, h1 in bounds:
        for w0, w1 in wbounds:
            img[h0:h1, w0:w1] = cnt
            cnt += 1
    win = img.reshape(hp // window, window, wp // window, window).transpose(0, 2, 1, 3)
    win = win.reshape(-1, window * window)
    diff = win[:, None, :] - win[:, :, None]
    out = np.where(diff != 0, np.float32(-100.0), np.float32(0.0)).astype(np.float32)
    out.setflags(write=False)
    return out


class Mlp(nn.Module):
    """fc1 → GELU (exact erf) → dropout → fc2 → dropout."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [..., dim] → [..., dim]."""
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative-position bias.

    Args:
        dim: token width C.
        window: window side w (N = w² tokens per window).
        num_heads: heads; C must divide.
        qkv_bias: bias in the packed qkv projection.
        attn_drop: attention-probability dropout (training only).
        proj_drop: output dropout.
    """

    def __init__(
        self,
        dim: int,
        window: int,
        num_heads: int,
        *,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.window = window
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        index = relative_position_index(window, self.relative_position_bias_table.device)
        self.register_buffer("relative_position_index", index, persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        if not self.relative_position_bias_table.is_meta:
            trunc_normal_(self.relative_position_bias_table, std=0.02)

    def reset_buffers(self) -> None:
        """(Re)build the non-persistent index buffer on the bias table's device (after a meta build)."""
        dev = self.relative_position_bias_table.device
        self.relative_position_index = relative_position_index(self.window, dev)

    def position_bias(self) -> torch.Tensor:
        """Relative-position bias [nH, N, N]."""
        n = self.window * self.window
        idx = self.relative_position_index.reshape(-1)
        return self.relative_position_bias_table[idx].reshape(n, n, self.num_heads).permute(2, 0, 1)

    def padded_qkv(self, y: torch.Tensor, hp: int, wp: int) -> torch.Tensor:
        """qkv of a zero-padded map without projecting the padding.

        A zero pad token's qkv is exactly the qkv bias, so only the H×W real tokens go through the
        Linear; the pad region is filled with the bias (bit-identical to projecting zeros).

        Args:
            y: normalised tokens [B, H, W, C].
            hp, wp: padded size (≥ H, W).

        Returns:
            [B, hp, wp, 3C].
        """
        b, h, w, c = y.shape
        qkv = self.qkv(y)
        if (hp, wp) == (h, w):
            return qkv
        if self.qkv.bias is None:
            return F.pad(qkv, (0, 0, 0, wp - w, 0, hp - h))
        full = self.qkv.bias.to(qkv.dtype).expand(b, hp, wp, 3 * c).clone()
        full[:, :h, :w] = qkv
        return full

    def attend(
        self, qkv: torch.Tensor, n_windows: int, mask: torch.Tensor | None, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Attention inside windows, without the output projection.

        Args:
            qkv: [B·nW, N, 3C] packed q/k/v of the window tokens (windows of one sample contiguous).
            n_windows: nW, windows per sample.
            mask: optional [nW, N, N] additive shift mask (0 / −100).
            rows: optional query positions [Lq] (only with nW = 1): attend from these tokens only.

        Returns:
            [B·nW, N (or Lq), C].
        """
        bw, n, c3 = qkv.shape
        c = c3 // 3
        h = self.num_heads
        d = c // h
        q, k, v = qkv.reshape(bw, n, 3, h, d).permute(2, 0, 3, 1, 4).unbind(0)  # [B·nW, nH, N, d]
        bias = self.position_bias().to(q.dtype)  # [nH, N, N]
        p = self.attn_drop if self.training else 0.0
        if rows is not None:
            if n_windows != 1:
                raise ValueError("query rows are only supported with one window per sample")
            q = q[:, :, rows]
            bias = bias[:, rows]
            if mask is not None:
                bias = bias + mask[0, rows].to(q.dtype)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(0), dropout_p=p)
            return out.transpose(1, 2).reshape(bw, rows.numel(), c)
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(0), dropout_p=p)
        else:
            # fold the windows into the head axis so one [nW·nH, N, N] mask broadcasts over the batch
            b = bw // n_windows
            attn_mask = (bias.unsqueeze(0) + mask.to(q.dtype).unsqueeze(1)).reshape(n_windows * h, n, n)
            q, k, v = (t.reshape(b, n_windows * h, n, d) for t in (q, k, v))
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask.unsqueeze(0), dropout_p=p)
            out = out.reshape(bw, h, n, d)
        return out.transpose(1, 2).reshape(bw, n, c)

    def forward(self, x: torch.Tensor, n_windows: int, mask: torch.Tensor | None) -> torch.Tensor:
        """Attend within windows: x [B·nW, N, C] → [B·nW, N, C] (qkv → :meth:`attend` → proj)."""
        return self.proj_drop(self.proj(self.attend(self.qkv(x), n_windows, mask)))


@lru_cache(maxsize=256)
def _real_rows_np(h: int, w: int, window: int, shift: int) -> np.ndarray:
    """Positions, in a single rolled window, of the h×w real tokens (row-major order): [h·w] int64."""
    r = (np.arange(h) - shift) % window
    c = (np.arange(w) - shift) % window
    out = (r[:, None] * window + c[None, :]).reshape(-1).astype(np.int64)
    out.setflags(write=False)
    return out


_DEVICE_CONSTS: dict[tuple, torch.Tensor] = {}


def _device_const(kind: str, args: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A shape-only constant (``mask``: shift mask, ``rows``: real-token rows) cached per device.

    Caching on the target device keeps host→device copies out of every forward (CUDA-graph capture
    forbids them); building it outside inference mode lets a constant first made under
    ``torch.inference_mode`` be reused by a later training forward (autograd rejects inference
    tensors). Only plain tensors are cached: under tracing (export, fake tensors) the constant is
    rebuilt each call and never stored.
    """
    key = (kind, args, str(device))
    t = _DEVICE_CONSTS.get(key)
    if t is not None:
        return t
    src = _shift_mask_np(*args) if kind == "mask" else _real_rows_np(*args)
    with torch.inference_mode(False):
        t = torch.tensor(src, device=device)
    if type(t) is torch.Tensor and not t.is_meta and len(_DEVICE_CONSTS) < 1024:
        _DEVICE_CONSTS[key] = t
    return t


class SwinBlock(nn.Module):
    """One Swin block: padded (shifted) window attention + MLP, pre-norm, with drop-path.

    Args:
        dim: token width.
        num_heads: attention heads.
        window: window side (never clamped to the map size).
        shift: cyclic shift (0 or window // 2); applied whenever > 0, whatever the map size.
        mlp_ratio: MLP hidden width / dim.
        qkv_bias, drop, attn_drop: as in :class:`WindowAttention`.
        drop_path: stochastic-depth rate of this block.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        window: int,
        shift: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0 <= shift < window:
            raise ValueError(f"shift must be in [0, window), got shift={shift}, window={window}")
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(
            dim, window, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: torch.Tensor, hw: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        """x: [B, H·W, C] tokens of an H×W map; ``mask`` [nW, N, N] used only when shifted.

        Same numbers as the release block (pad after norm1, roll, window attention, un-roll, crop),
        computed with less work: padded tokens are never projected (their qkv is the bias) and the
        output projection runs on real tokens only; when the padded map is a single window, only
        the real tokens' queries are evaluated.
        """
        H, W = hw
        B, L, C = x.shape
        w, s = self.window, self.shift
        y = self.norm1(x).reshape(B, H, W, C)
        Hp, Wp = H + (-H) % w, W + (-W) % w
        qkv = self.attn.padded_qkv(y, Hp, Wp)  # [B, Hp, Wp, 3C]
        if s:
            qkv = torch.roll(qkv, shifts=(-s, -s), dims=(1, 2))
        if Hp == w and Wp == w:  # one window per sample: evaluate the real queries only
            rows = _device_const("rows", (H, W, w, s), x.device)
            out = self.attn.attend(qkv.reshape(B, w * w, 3 * C), 1, mask if s else None, rows)  # [B, L, C]
        else:
            nh, nw = Hp // w, Wp // w
            win = qkv.reshape(B, nh, w, nw, w, 3 * C).permute(0, 1, 3, 2, 4, 5)
            win = win.reshape(B * nh * nw, w * w, 3 * C)
            out = self.attn.attend(win, nh * nw, mask if s else None)
            out = out.reshape(B, nh, nw, w, w, C).permute(0, 1, 3, 2, 4, 5).reshape(B, Hp, Wp, C)
            if s:
                out = torch.roll(out, shifts=(s, s), dims=(1, 2))
            if Hp != H or Wp != W:
                out = out[:, :H, :W, :]
            out = out.reshape(B, L, C)
        out = self.attn.proj_drop(self.attn.proj(out))
        x = x + self.drop_path(out)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2×2 neighbourhood concat (pads odd sizes) → LayerNorm(4C) → Linear(4C → 2C, no bias)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """x: [B, H·W, C] → [B, ⌈H/2⌉·⌈W/2⌉, 2C]."""
        H, W = hw
        B, _, C = x.shape
        x = x.reshape(B, H, W, C)
        if H % 2 or W % 2:
            x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
        # channel order (h, w) offsets: (0,0), (1,0), (0,1), (1,1), the original Swin layout
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.reshape(B, -1, 4 * C)))


class SwinStage(nn.Module):
    """A stack of blocks (even: plain windows, odd: shifted) followed by optional patch merging."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        *,
        window: int,
        mlp_ratio: float,
        qkv_bias: bool,
        drop: float,
        attn_drop: float,
        drop_path: Sequence[float],
        downsample: bool,
    ) -> None:
        super().__init__()
        self.window = window
        self.shift = window // 2
        self.blocks = nn.ModuleList(
            SwinBlock(
                dim,
                num_heads,
                window=window,
                shift=0 if i % 2 == 0 else window // 2,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                drop=drop,
                attn_drop=attn_drop,
                drop_path=drop_path[i],
            )
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """x: [B, H·W, C] → [B, H·W, C] (before merging; call ``downsample`` separately)."""
        H, W = hw
        w = self.window
        mask = None
        if self.shift and len(self.blocks) > 1:
            hp, wp = -(-H // w) * w, -(-W // w) * w
            mask = _device_const("mask", (hp, wp, w, self.shift), x.device)
        for blk in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = torch_checkpoint.checkpoint(blk, x, hw, mask, use_reentrant=False)
            else:
                x = blk(x, hw, mask)
        return x


class SwinTransformer(nn.Module):
    """Segmentation-style Swin backbone returning four normalised NCHW stage maps.

    Args:
        in_chans: input channels (3: the depth stream is fed as depth×3).
        embed_dim: stage-1 width C (stage i has C·2^i).
        depths: blocks per stage.
        num_heads: heads per stage.
        window: window side (12 for Swin-B-384).
        patch_size: patch-embed stride/kernel.
        mlp_ratio: MLP hidden width / dim.
        qkv_bias: bias in qkv.
        drop_rate, attn_drop_rate: dropout rates (0 in the release).
        drop_path_rate: stochastic depth, linear from 0 over all blocks.
        ape: learned absolute position embedding, bicubic-resized to the patch grid.
        pretrain_img_size: sets the APE grid (224 → 56×56).

    Shapes: ``forward(x [B, in_chans, H, W])`` → 4 maps [B, C·2^i, ⌈H/4/2^i⌉, …] at strides 4…32.
    """

    def __init__(
        self,
        *,
        in_chans: int = 3,
        embed_dim: int = 128,
        depths: Sequence[int] = (2, 2, 18, 2),
        num_heads: Sequence[int] = (4, 8, 16, 32),
        window: int = 12,
        patch_size: int = 4,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        ape: bool = True,
        pretrain_img_size: int = 224,
    ) -> None:
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError("depths and num_heads must have the same length")
        self.patch_size = patch_size
        self.num_layers = len(depths)
        self.out_channels = tuple(embed_dim * 2**i for i in range(self.num_layers))
        self.reductions = tuple(patch_size * 2**i for i in range(self.num_layers))
        self.input_multiple = patch_size
        """Inputs need only be a multiple of the patch size (each block pads to whole windows)."""
        self.patch_embed = _PatchEmbed(in_chans, embed_dim, patch_size)
        self.ape = ape
        if ape:
            g = pretrain_img_size // patch_size
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, g, g))
            if not self.absolute_pos_embed.is_meta:
                trunc_normal_(self.absolute_pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        self.layers = nn.ModuleList()
        for i in range(self.num_layers):
            lo = sum(depths[:i])
            self.layers.append(
                SwinStage(
                    self.out_channels[i],
                    depths[i],
                    num_heads[i],
                    window=window,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    drop=drop_rate,
                    attn_drop=attn_drop_rate,
                    drop_path=dpr[lo : lo + depths[i]],
                    downsample=i < self.num_layers - 1,
                )
            )
        for i, c in enumerate(self.out_channels):
            self.add_module(f"norm{i}", nn.LayerNorm(c))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if any(p.is_meta for p in m.parameters(recurse=False)):
            return  # a meta-device build (weights about to be assigned from a checkpoint)
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block in backward instead of storing its activations."""
        for layer in self.layers:
            layer.grad_checkpointing = enable

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: [B, in_chans, H, W] → [L1, L2, L3, L4], Li: [B, C·2^(i−1), h_i, w_i] (NCHW)."""
        x = self.patch_embed(x)  # [B, C, Wh, Ww], after LayerNorm
        h, w = x.shape[-2:]
        if self.ape:
            pe = F.interpolate(self.absolute_pos_embed, size=(h, w), mode="bicubic", align_corners=False)
            x = x + pe.to(x.dtype)
        x = self.pos_drop(x.flatten(2).transpose(1, 2))
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x, (h, w))
            y = getattr(self, f"norm{i}")(x)
            outs.append(y.reshape(y.shape[0], h, w, -1).permute(0, 3, 1, 2))
            if layer.downsample is not None:
                x = layer.downsample(x, (h, w))
                h, w = (h + 1) // 2, (w + 1) // 2
        return outs


class _PatchEmbed(nn.Module):
    """Conv(k = s = patch) with right/bottom zero padding to a multiple of the patch, then LayerNorm."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, Cin, H, W] → [B, C, ⌈H/p⌉, ⌈W/p⌉]."""
        p = self.patch_size
        H, W = x.shape[-2:]
        if H % p or W % p:
            x = F.pad(x, (0, (-W) % p, 0, (-H) % p))
        x = self.proj(x)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def swin_b(*, drop_path_rate: float = 0.1, in_chans: int = 3) -> SwinTransformer:
    """The release's Swin-B: C=128, depths (2,2,18,2), heads (4,8,16,32), window 12, APE 56×56."""
    return SwinTransformer(
        in_chans=in_chans,
        embed_dim=128,
        depths=(2, 2, 18, 2),
        num_heads=(4, 8, 16, 32),
        window=12,
        drop_path_rate=drop_path_rate,
        ape=True,
    )


def swin_tiny_test(*, drop_path_rate: float = 0.0, in_chans: int = 3) -> SwinTransformer:
    """A toy of the same Swin for CPU tests and the demo: C=16, depths (2,2,2,2), window 4."""
    return SwinTransformer(
        in_chans=in_chans,
        embed_dim=16,
        depths=(2, 2, 2, 2),
        num_heads=(1, 2, 4, 8),
        window=4,
        drop_path_rate=drop_path_rate,
        ape=True,
    )
