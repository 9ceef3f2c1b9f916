"""Graders for the exercises at the end of each chapter.

Each ``check_*`` function takes the reader's answer (a function to run, or a value for the
predict and explain exercises), runs it on a set of cases (including awkward ones), compares it
with the package's own answer, and either prints one line starting with ``✓``, or raises
``AssertionError`` saying in one sentence what is wrong in the first case that differs (a shape,
a dtype, values, a gradient, an input changed in place). An answer not written yet (a function
that raises ``NotImplementedError``, or ``None``) prints one line starting with ``…`` and
returns, so that a student notebook runs from top to bottom:

    >>> from jamba_min.exercises import check_active_params
    >>> check_active_params(my_active_params)  # doctest: +SKIP
    ✓ check_active_params: 7 cases agree

One module per chapter (``ch00.py`` … ``ch09.py``), each listing its graders in ``__all__``;
``general.py`` holds :func:`check_prediction` and the key-facts check of explain exercises;
``_common.py`` the ``@grader`` decorator, the input guard (``call``) and the comparisons. To add a
grader: write it in its chapter's module (create ``chNN.py`` if needed), decorate it with
``@grader``, call the reader's function through ``call(...)``, add the module below, and give
``tests/test_exercises.py`` a right and a typical wrong answer for it. The exercise cells
that call graders follow the convention in :mod:`jamba_min.course`.
"""

from . import ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10, ch11, general
from .ch00 import check_active_params, check_kv_cache_answer, check_max_context
from .ch01 import check_discretize, check_euler_answer
from .ch02 import check_ema, check_scan_from_state, check_selective_scan
from .ch03 import check_chunked_scan, check_matrix_scan
from .ch04 import check_cumsum, check_reverse_recurrence
from .ch05 import check_causal_conv1d, check_forward_from_state, check_norms_answer
from .ch06 import check_cached_attention, check_position_answer
from .ch07 import check_imbalance_answer, check_route_with_capacity
from .ch08 import check_greedy_decode, check_layer_cache_bytes
from .ch09 import (
    check_align_labels,
    check_first_token_answer,
    check_lr_schedule,
    check_token_loss,
)
from .ch10 import check_induction_mass, check_recall_answer
from .ch11 import check_left_pad, check_padding_answer
from .general import check_prediction

_MODULES = (ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10, ch11, general)

__all__ = [
    "check_active_params",
    "check_align_labels",
    "check_cached_attention",
    "check_causal_conv1d",
    "check_chunked_scan",
    "check_cumsum",
    "check_discretize",
    "check_ema",
    "check_euler_answer",
    "check_first_token_answer",
    "check_forward_from_state",
    "check_greedy_decode",
    "check_imbalance_answer",
    "check_induction_mass",
    "check_kv_cache_answer",
    "check_layer_cache_bytes",
    "check_left_pad",
    "check_lr_schedule",
    "check_matrix_scan",
    "check_max_context",
    "check_norms_answer",
    "check_padding_answer",
    "check_position_answer",
    "check_prediction",
    "check_recall_answer",
    "check_reverse_recurrence",
    "check_route_with_capacity",
    "check_scan_from_state",
    "check_selective_scan",
    "check_token_loss",
]
