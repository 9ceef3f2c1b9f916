"""The fast paths, each beside the reference it must equal (chapters 2-5).

The readable core (``mamba``, ``attention``, ``moe``, ``model``, ``norm``) calls one function per
operation; the function picks the implementation. Every implementation is tested against its
reference, values and gradients.

==========================  ===================================================  ============
operation                   implementations                                      chapter
==========================  ===================================================  ============
:func:`selective_scan`      ``ref`` loop · ``parallel`` chunked scan with a      2, 3, 4
                            written-out backward · ``triton`` kernels
:func:`selective_state_update`  one token's step (decoding) · its ``_ref``        5
:func:`causal_conv1d`       ``ref`` ``F.conv1d`` · ``fast`` shifted multiply-adds  5
                            with a written-out backward; ``causal_conv1d_update``
:func:`rms_norm`            ``ref`` formula · ``fast`` ``F.rms_norm`` and a       5
                            written-out backward
:func:`attention`           ``eager`` written-out softmax · ``sdpa`` PyTorch's    6
                            fused kernel, with the one-token GQA layout
==========================  ===================================================  ============
"""

from .common import compute_dtype, first_order_only, to_compute
from .conv import CONV_BACKENDS, causal_conv1d, causal_conv1d_ref, causal_conv1d_update
from .norm import NORM_BACKENDS, rms_norm, rms_norm_ref
from .scan import (
    BACKENDS,
    check_backend,
    random_scan_inputs,
    selective_scan,
    selective_scan_parallel,
    selective_scan_ref,
)
from .state_update import selective_state_update, selective_state_update_ref

__all__ = [
    "BACKENDS",
    "CONV_BACKENDS",
    "NORM_BACKENDS",
    "causal_conv1d",
    "causal_conv1d_ref",
    "causal_conv1d_update",
    "check_backend",
    "compute_dtype",
    "first_order_only",
    "random_scan_inputs",
    "rms_norm",
    "rms_norm_ref",
    "selective_scan",
    "selective_scan_parallel",
    "selective_scan_ref",
    "selective_state_update",
    "selective_state_update_ref",
    "to_compute",
]
