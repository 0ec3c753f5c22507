"""pdfnet.utils.precision: the one owner of precision names and autocast."""

import warnings

import pytest
import torch

from pdfnet.errors import UserError
from pdfnet.utils.precision import DTYPES, amp_precision, autocast, cpu_bf16_kernels, resolve_dtype


def test_names_and_dtypes():
    assert resolve_dtype("bf16") is torch.bfloat16
    assert resolve_dtype(torch.float16) is torch.float16
    assert set(DTYPES) == {"fp32", "fp16", "bf16"}
    with pytest.raises(UserError):
        resolve_dtype("fp64")
    with pytest.raises(UserError):
        resolve_dtype(torch.float64)


def test_autocast_is_a_no_op_for_fp32_and_none():
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    for dt in (None, torch.float32):
        with autocast("cpu", dt):
            assert (a @ b).dtype == torch.float32
    with autocast(torch.device("cpu"), torch.bfloat16):
        assert (a @ b).dtype == torch.bfloat16


def test_amp_precision_cpu_fallback_and_errors():
    cpu = torch.device("cpu")
    assert amp_precision("fp32", cpu) == (None, False)
    assert amp_precision("bf16", cpu) == (torch.bfloat16, False)
    with pytest.warns(UserWarning, match="fp16"):
        assert amp_precision("fp16", cpu) == (None, False)
    assert amp_precision("fp16", torch.device("cuda")) == (torch.float16, True)
    with pytest.raises(UserError, match="unknown precision"):
        amp_precision("half", cpu)


def test_cpu_bf16_autocast_warns_exactly_when_the_cpu_has_no_bf16_kernels():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with autocast("cpu", torch.bfloat16):
            out = torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3))
    assert out.dtype == torch.bfloat16  # it still runs in bf16: --dtype sets the dtype
    slow = [w for w in caught if "slower than fp32" in str(w.message)]
    assert bool(slow) == (not cpu_bf16_kernels())
