# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""What is learned: the tanh-squashed Gaussian actor and the critic ensemble.

The N critics live in one module whose weights carry a leading ensemble axis, so all N are
evaluated by one batched matmul per layer instead of N separate passes. That keeps a 2-critic
update as cheap as it can be on a CPU and makes REDQ's N=10 practical.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sac_robot.policy_runtime import LOG_STD_MAX, LOG_STD_MIN  # one definition for training and deployment

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "silu": nn.SiLU}


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """π(a|s): a Gaussian squashed by tanh, then scaled to the action bounds."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: list[int],
        activation: str,
        action_low: torch.Tensor,
        action_high: torch.Tensor,
    ) -> None:
        super().__init__()
        self.trunk = mlp([obs_dim, *hidden_sizes], activation)
        self.trunk.append(ACTIVATIONS[activation]())
        self.head = nn.Linear(hidden_sizes[-1], 2 * act_dim)
        self.act_dim = act_dim
        self.register_buffer("action_scale", ((action_high - action_low) / 2.0).float())
        self.register_buffer("action_bias", ((action_high + action_low) / 2.0).float())

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Under bfloat16 autocast the hidden layers run in bf16; the head and the distribution maths stay fp32.
        hidden = self.trunk(obs)
        with torch.autocast(hidden.device.type, enabled=False):
            mean, log_std = self.head(hidden.float()).chunk(2, dim=-1)
        # Soft clamp of log σ into [LOG_STD_MIN, LOG_STD_MAX], as CleanRL and SB3 do, to keep σ sane early on.
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1.0)
        return mean, log_std

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised sample and its log-probability under the squashed distribution."""
        mean, log_std = self(obs)
        std = log_std.exp()
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        u = mean + std * noise
        y = torch.tanh(u)
        # log N(u; μ, σ) − Σ log(scale·(1 − tanh²u)), the change of variables of the squashing (SAC paper, App. C).
        log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (torch.log(self.action_scale * (1.0 - y.pow(2)) + 1e-6)).sum(-1)
        return y * self.action_scale + self.action_bias, log_prob

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        mean, _ = self(obs)
        return torch.tanh(mean) * self.action_scale + self.action_bias


class EnsembleLinear(nn.Module):
    """N independent linear layers applied to N input batches with one batched matmul."""

    def __init__(self, n: int, in_features: int, out_features: int, float32: bool = False) -> None:
        super().__init__()
        self.float32 = float32  # stay in fp32 under bf16 autocast (output layers: Q-values feed the TD error)
        self.weight = nn.Parameter(torch.empty(n, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n, 1, out_features))
        # Same initialisation as nn.Linear, per ensemble member.
        bound = 1.0 / math.sqrt(in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, B, in) or (B, in), broadcast to every member.
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.weight.shape[0], -1, -1)
        if self.float32:
            with torch.autocast(x.device.type, enabled=False):
                return torch.baddbmm(self.bias, x.float(), self.weight)
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm with a separate affine transform per ensemble member (DroQ)."""

    def __init__(self, n: int, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n, 1, features))
        self.bias = nn.Parameter(torch.zeros(n, 1, features))
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.layer_norm(x, (self.features,)) * self.weight + self.bias


class CriticEnsemble(nn.Module):
    """Q_1..Q_N(s, a), returned stacked as (N, B)."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: list[int],
        activation: str,
        n_critics: int,
        dropout: float = 0.0,
        layernorm: bool = False,
    ) -> None:
        super().__init__()
        sizes = [obs_dim + act_dim, *hidden_sizes]
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers.append(EnsembleLinear(n_critics, sizes[i], sizes[i + 1]))
            if dropout > 0:  # DroQ: dropout then LayerNorm, before the nonlinearity (Hiraoka et al. 2022).
                layers.append(nn.Dropout(dropout))
            if layernorm:
                layers.append(EnsembleLayerNorm(n_critics, sizes[i + 1]))
            layers.append(ACTIVATIONS[activation]())
        layers.append(EnsembleLinear(n_critics, sizes[-1], 1, float32=True))
        self.net = nn.Sequential(*layers)
        self.n_critics = n_critics

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1).float()
