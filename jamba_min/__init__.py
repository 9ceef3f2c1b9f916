"""jamba-min: Jamba (Lieber et al. 2024, arXiv 2403.19887) built from scratch.

The package behind the book: each module is one chapter's piece, written to be read.

Glossary (short names used in code and docstrings, with the paper's symbols):

==================  ===========  ==========================================================
name                symbol       meaning
==================  ===========  ==========================================================
``b``, ``batch``                 batch size
``L``, ``seq_len``  L            sequence length (tokens)
``d``, ``hidden``   d            model width, ``hidden_size``
``d_inner``         E·d          Mamba's inner width, ``mamba_expand * hidden_size``
``d_state``         N            SSM state size per channel (16 in Jamba)
``dt_rank``         R            rank of the low-rank projection that makes Δ (ceil(d / 16))
``delta``           Δ            input-dependent step size of the discretisation
``A``, ``B``, ``C`` A, B, C      SSM parameters; B and C are input-dependent in Mamba (S6)
``D``               D            skip connection from input to output inside the SSM
``d_conv``                       width of Mamba's causal depthwise convolution (4)
``H``, ``G``        H, G         query heads; key-value heads (each serves H / G query heads)
``d_h``             d_h          size of one attention head, ``head_dim``
``T``               T            tokens held in a KV cache (the context while decoding)
``chunk``           τ            chunk length of the chunked scan (``jamba_min.ops``)
``l``               l            layers per Jamba block (``attn_layer_period``)
``a:m``             a:m          attention-to-Mamba layers within a block (1:7)
``e``               e            a MoE MLP every ``e`` layers (``expert_layer_period``)
``n``               n            experts per MoE layer (``num_experts``)
``K``               K            experts used per token (``num_experts_per_tok``)
==================  ===========  ==========================================================

Every symbol has one meaning in the whole package and book; the book's notation page lists them
all, with shapes and the chapter that introduces each.
"""

from . import (
    _backend,  # noqa: F401  (first: sets TRITON_INTERPRET before triton is imported)
    data,
    exercises,
)
from .accounting import (
    PAPER_TABLE1,
    attention_params,
    count_params,
    kv_cache_bytes,
    mamba_mixer_params,
    mamba_state_bytes,
    mlp_params,
    paper_models,
    param_breakdown,
    scan_bytes,
)
from .attention import JambaAttention, KVCache
from .config import JambaConfig
from .mamba import JambaMambaMixer, MambaState
from .model import JambaForCausalLM, JambaModel
from .moe import JambaMLP, JambaSparseMoeBlock, load_balancing_loss
from .norm import RMSNorm
from .ops import selective_scan

from_pretrained = JambaForCausalLM.from_pretrained  # jm.from_pretrained(path, dtype=None)

__version__ = "0.1.0"

__all__ = [
    "PAPER_TABLE1",
    "JambaAttention",
    "JambaConfig",
    "JambaForCausalLM",
    "JambaMLP",
    "JambaMambaMixer",
    "JambaModel",
    "JambaSparseMoeBlock",
    "KVCache",
    "MambaState",
    "RMSNorm",
    "__version__",
    "ablation",
    "attention_params",
    "count_params",
    "data",
    "exercises",
    "from_pretrained",
    "kv_cache_bytes",
    "load_balancing_loss",
    "longctx",
    "mamba_mixer_params",
    "mamba_state_bytes",
    "mlp_params",
    "paper_models",
    "param_breakdown",
    "results",
    "scan_bytes",
    "selective_scan",
    "train",
]


def __getattr__(name: str):
    # jm.train on first use: imported eagerly, ``python -m jamba_min.train`` would find the
    # module already loaded and warn that it runs it a second time
    if name in ("train", "ablation", "results", "longctx"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
