"""Fixtures shared by the unit tests: transformers' side of each comparison, built in one place.

jamba_min's config has transformers' field names, so transformers' config is the same fields plus
the switches that say how transformers computes; ``hf_config`` is the one place that sets them.
The factories here build what several test files build; a pair that one file alone compares is a
fixture in that file, built on ``hf_config``. Nothing imports this module (the repository's root
conftest.py has the same module name): constants that decorators need are in configs.py.
"""

import dataclasses
from collections.abc import Callable

import pytest
import torch
import transformers
from configs import BASE
from transformers.cache_utils import DynamicCache

import jamba_min as jm


@pytest.fixture(scope="session")
def hf_config() -> Callable[..., transformers.JambaConfig]:
    """``hf_config(cfg, eager_attention=False)``: transformers' JambaConfig for a jamba_min one.

    Its experts always run transformers' eager loop, the reference its fused kernels replace;
    ``eager_attention=True`` also swaps SDPA for its written-out attention.
    """

    def convert(cfg: jm.JambaConfig, *, eager_attention: bool = False) -> transformers.JambaConfig:
        hf = transformers.JambaConfig(**dataclasses.asdict(cfg))
        hf._experts_implementation = "eager"
        if eager_attention:
            hf._attn_implementation = "eager"
        return hf

    return convert


@pytest.fixture(scope="session")
def hf_cache(hf_config) -> Callable[..., DynamicCache]:
    """``hf_cache(cfg, **changes)``: an empty transformers cache for ``cfg.replace(**changes)``.

    Tests of one layer ask for a one-layer schedule whose layer 0 is the kind they test.
    """

    def make(cfg: jm.JambaConfig, **changes) -> DynamicCache:
        return DynamicCache(config=hf_config(cfg.replace(**changes)))

    return make


@pytest.fixture(scope="session")
def model_pair(hf_config) -> Callable[[dict], tuple]:
    """``model_pair(changes)``: our JambaForCausalLM and transformers', on ``BASE | changes``.

    Both in eval mode with the same weights: transformers' initialisation, every parameter then
    moved by random noise (transformers leaves some at their initial value), copied into ours.
    """

    def make(changes: dict) -> tuple[jm.JambaForCausalLM, transformers.JambaForCausalLM]:
        cfg = jm.JambaConfig(**{**BASE, **changes})
        torch.manual_seed(0)
        theirs = transformers.JambaForCausalLM(hf_config(cfg)).eval()
        with torch.no_grad():
            for p in theirs.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        ours = jm.JambaForCausalLM(cfg).eval()
        ours.load_state_dict(theirs.state_dict(), strict=True)
        return ours, theirs

    return make
