"""RMSNorm against transformers' JambaRMSNorm: values, gradients, the written-out backward."""

import pytest
import torch
from transformers.models.jamba.modeling_jamba import JambaRMSNorm

from jamba_min import RMSNorm


def pair(dim: int, dtype=torch.float32):
    torch.manual_seed(0)
    ours = RMSNorm(dim, eps=1e-6).to(dtype)
    with torch.no_grad():
        ours.weight.normal_()
    theirs = JambaRMSNorm(dim, eps=1e-6).to(dtype)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


@pytest.mark.parametrize("shape", [(2, 7, 16), (3, 8), (1, 1, 1, 5)])
def test_matches_transformers_with_gradients(shape):
    ours, theirs = pair(shape[-1])
    x = (torch.randn(shape) * 3).requires_grad_()
    g = torch.randn(shape)
    y_ours = ours(x)
    (gx_ours, gw_ours) = torch.autograd.grad(y_ours, (x, ours.weight), g)
    y_theirs = theirs(x)
    (gx_theirs, gw_theirs) = torch.autograd.grad(y_theirs, (x, theirs.weight), g)
    torch.testing.assert_close(y_ours, y_theirs, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gx_ours, gx_theirs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gw_ours, gw_theirs, rtol=1e-5, atol=1e-5)


def test_gradcheck_float64():
    norm = RMSNorm(6).double()
    with torch.no_grad():
        norm.weight.normal_()
    x = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: torch.func.functional_call(norm, {"weight": w}, x),
                                    (x, norm.weight.detach().clone().requires_grad_()))  # fmt: skip


@pytest.mark.parametrize("frozen", ["x", "weight"])
def test_only_the_gradients_asked_for(frozen):
    norm = RMSNorm(4)
    x = torch.randn(3, 4, requires_grad=frozen != "x")
    norm.weight.requires_grad_(frozen != "weight")
    norm(x).sum().backward()
    assert (x.grad is None) == (frozen == "x")
    assert (norm.weight.grad is None) == (frozen == "weight")


def test_bfloat16_normalises_in_float32():
    ours, theirs = pair(8, torch.bfloat16)
    x = torch.randn(4, 8, dtype=torch.bfloat16)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)
