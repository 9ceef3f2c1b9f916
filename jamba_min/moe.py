"""Feed-forward layers: the dense SwiGLU MLP and Jamba's sparse mixture of experts (chapter 7).

Shapes: the ``b·L`` tokens of a batch, flattened; ``d`` = ``hidden_size``, ``d_ff`` =
``intermediate_size``, ``n`` experts, ``K`` experts per token.

The router is a bias-free linear map d → n. Its logits go through a softmax in float32 over all
n experts; each token keeps its top K experts **with those probabilities as they are** (Jamba;
Mixtral renormalises the K weights to sum to one, ``renormalize=True`` here). The auxiliary
load-balancing loss is Switch Transformer's n · Σ_i f_i P_i, as transformers computes it.

Parameter names follow transformers ≥ 5: ``router.weight`` ``(n, d)``, and the experts fused in
``experts.gate_up_proj`` ``(n, 2·d_ff, d)`` and ``experts.down_proj`` ``(n, d, d_ff)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ACTIVATIONS, JambaConfig

__all__ = ["JambaMLP", "JambaSparseMoeBlock", "load_balancing_loss", "route"]


class JambaMLP(nn.Module):
    """SwiGLU MLP: down(act(gate(x)) · up(x)); ``(..., d)`` → ``(..., d)``."""

    def __init__(self, config: JambaConfig):
        super().__init__()
        d, d_ff = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(d, d_ff, bias=False)
        self.up_proj = nn.Linear(d, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d, bias=False)
        self.act = ACTIVATIONS[config.hidden_act]
        for linear in (self.gate_proj, self.up_proj, self.down_proj):
            nn.init.normal_(linear.weight, std=config.initializer_range)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


def route(logits: Tensor, top_k: int, renormalize: bool = False) -> tuple[Tensor, Tensor]:
    """Top-K routing from router logits ``(b·L, n)``: weights and expert ids, ``(b·L, K)`` each.

    The softmax runs in float32 (float64 stays float64) over all n experts. Jamba keeps the K
    probabilities as they are; ``renormalize=True`` divides them by their sum, as Mixtral does.
    """
    probs = torch.softmax(logits, dim=-1, dtype=torch.promote_types(logits.dtype, torch.float32))
    weights, experts = torch.topk(probs, top_k, dim=-1)
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights.to(logits.dtype), experts


class Experts(nn.Module):
    """n SwiGLU experts stored as two stacked weights (transformers ≥ 5 layout)."""

    def __init__(self, config: JambaConfig):
        super().__init__()
        n, d, d_ff = config.num_experts, config.hidden_size, config.intermediate_size
        self.gate_up_proj = nn.Parameter(torch.randn(n, 2 * d_ff, d) * config.initializer_range)
        self.down_proj = nn.Parameter(torch.randn(n, d, d_ff) * config.initializer_range)
        self.act = ACTIVATIONS[config.hidden_act]

    def weights(self) -> list[tuple[Tensor, Tensor]]:
        """Each expert's (gate_up, down) weights, split once per call: indexing the stacked
        parameters once per expert would make autograd build a full-size gradient per expert."""
        return list(zip(self.gate_up_proj.unbind(0), self.down_proj.unbind(0), strict=True))

    def expert(self, w: tuple[Tensor, Tensor], x: Tensor) -> Tensor:
        """One expert with weights ``w`` on its tokens ``(tokens, d)`` → ``(tokens, d)``."""
        gate, up = F.linear(x, w[0]).chunk(2, dim=-1)
        return F.linear(self.act(gate) * up, w[1])

    def forward(self, x: Tensor, weights: Tensor, experts: Tensor) -> Tensor:
        """Sorted dispatch: ``x`` ``(b·L, d)``, ``weights``/``experts`` ``(b·L, K)`` → ``(b·L, d)``.

        The b·L·K (token, expert) pairs are sorted by expert, so each expert runs once, as one
        matrix product on a contiguous slice of its tokens; results are scaled by their routing
        weights and added back to their tokens.
        """
        K = experts.shape[1]
        if x.shape[0] == 0:
            return torch.zeros_like(x)
        if x.shape[0] == 1:  # one token (decoding one sequence): its K experts, nothing to sort
            w_up, w_down = self.gate_up_proj, self.down_proj
            y = [self.expert((w_up[e], w_down[e]), x) for e in experts[0].tolist()]  # K × (1, d)
            return weights.to(x.dtype) @ torch.cat(y)
        flat = experts.reshape(-1)
        order = torch.argsort(flat, stable=True)
        counts = torch.bincount(flat, minlength=self.gate_up_proj.shape[0]).tolist()
        token = order // K  # which token each sorted pair belongs to
        x_sorted = x.index_select(0, token)  # (b·L·K, d), grouped by expert; x[token] trains slower
        # split, not slices: the backward joins the pieces in one cat rather than adding each
        # expert's gradient into a zero tensor of the full size
        groups = x_sorted.split(counts)
        outputs = [
            self.expert(w, xe) for w, xe in zip(self.weights(), groups, strict=True) if len(xe)
        ]
        y_sorted = torch.cat(outputs) * weights.reshape(-1)[order, None]
        return torch.zeros_like(x).index_add_(0, token, y_sorted)

    def forward_naive(self, x: Tensor, weights: Tensor, experts: Tensor) -> Tensor:
        """The reference: every expert on every token, masked by its routing weight."""
        out = torch.zeros_like(x)
        for e, w in enumerate(self.weights()):
            gate = (weights * (experts == e)).sum(-1, keepdim=True)  # 0 where e was not chosen
            out = out + gate * self.expert(w, x)
        return out


class JambaSparseMoeBlock(nn.Module):
    """Router + n experts; ``(b, L, d)`` → ``((b, L, d), router logits (b·L, n))``.

    Mirrors transformers' ``JambaSparseMoeBlock``. ``renormalize=True`` gives Mixtral's routing.
    """

    def __init__(self, config: JambaConfig, renormalize: bool = False):
        super().__init__()
        self.num_experts, self.top_k, self.renormalize = (
            config.num_experts,
            config.num_experts_per_tok,
            renormalize,
        )
        self.router = nn.Linear(config.hidden_size, config.num_experts, bias=False)
        nn.init.normal_(self.router.weight, std=config.initializer_range)
        self.experts = Experts(config)

    def forward(self, hidden_states: Tensor, naive: bool = False) -> tuple[Tensor, Tensor]:
        b, L, d = hidden_states.shape
        x = hidden_states.reshape(-1, d)
        logits = self.router(x)  # (b·L, n)
        weights, experts = route(logits, self.top_k, self.renormalize)
        dispatch = self.experts.forward_naive if naive else self.experts
        return dispatch(x, weights, experts).reshape(b, L, d), logits


def load_balancing_loss(router_logits: Sequence[Tensor], num_experts: int, top_k: int) -> Tensor:
    """Switch Transformer's auxiliary loss over MoE layers, as transformers computes it for Jamba.

    For the tokens of every layer: f_i = the fraction of (token, top-K slot) assignments that
    go to expert i, P_i = the mean router probability of i, pooled over layers; the loss is
    n · Σ_i f_i P_i, which is K when routing is perfectly uniform. Not yet scaled by
    ``router_aux_loss_coef``.
    """
    if not router_logits:
        raise ValueError("load_balancing_loss: router_logits is empty (no MoE layer ran)")
    counts = torch.zeros(num_experts, dtype=torch.float32, device=router_logits[0].device)
    prob_sum = torch.zeros_like(counts)
    rows = 0
    for logits in router_logits:
        probs = torch.softmax(logits.float(), dim=-1)
        _, chosen = torch.topk(probs, top_k, dim=-1)
        counts = counts + torch.bincount(chosen.reshape(-1), minlength=num_experts).float()
        prob_sum = prob_sum + probs.sum(0)
        rows += logits.shape[0]
    return num_experts * torch.sum((counts / rows) * (prob_sum / rows))
