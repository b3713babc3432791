# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""How it is updated: Soft Actor-Critic, readable against the paper.

Haarnoja et al., "Soft Actor-Critic Algorithms and Applications" (arXiv:1812.05905), with the
options real-robot work uses: a critic ensemble with a random target subset (REDQ, Chen et al. 2021),
dropout + LayerNorm critics (DroQ, Hiraoka et al. 2022) and an update-to-data ratio above one.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from sac_robot.core.config import SACConfig
from sac_robot.core.networks import Actor, CriticEnsemble
from sac_robot.core.normalizer import RunningNormalizer


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("sac.device is 'cuda' but no CUDA device is available (use 'auto' or 'cpu')")
    return torch.device(name)


class SAC:
    """Actor, critic ensemble, target critics, temperature and their optimisers."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        action_low: np.ndarray,
        action_high: np.ndarray,
        cfg: SACConfig,
        seed: int = 0,
    ) -> None:
        if cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        torch.manual_seed(seed)
        self.cfg = cfg
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.device = resolve_device(cfg.device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.subset_rng = np.random.default_rng(seed + 1)
        low = torch.as_tensor(action_low, dtype=torch.float32)
        high = torch.as_tensor(action_high, dtype=torch.float32)
        self.actor = Actor(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation, low, high).to(self.device)
        self.critic = CriticEnsemble(
            obs_dim, act_dim, cfg.hidden_sizes, cfg.activation, cfg.n_critics, cfg.critic_dropout, cfg.critic_layernorm
        ).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor([float(np.log(cfg.init_alpha))], device=self.device, requires_grad=True)
        self.target_entropy = float(-act_dim if cfg.target_entropy == "auto" else cfg.target_entropy)
        # Fused Adam: one kernel per optimiser step instead of a handful of ops per parameter.
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr, fused=True)
        self.autocast_dtype = torch.bfloat16 if cfg.precision == "bfloat16" else None
        self.normalizer = RunningNormalizer(obs_dim, enabled=cfg.normalize_obs)
        self._norm_cache: tuple[float, torch.Tensor, torch.Tensor] | None = None
        # Control-loop inference stays on the CPU even when the learner trains on a GPU.
        self.actor_cpu = self.actor if self.device.type == "cpu" else copy.deepcopy(self.actor).cpu()
        self.updates = 0

    # --- acting ---------------------------------------------------------------------------------
    @property
    def alpha(self) -> float:
        return float(self.log_alpha.exp().item())

    def sync_cpu_actor(self) -> None:
        if self.actor_cpu is not self.actor:
            self.actor_cpu.load_state_dict(self.actor.state_dict())

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Action for one raw observation, on the CPU actor."""
        x = torch.as_tensor(self.normalizer.normalize(np.asarray(obs))[None], dtype=torch.float32)
        if deterministic:
            a = self.actor_cpu.deterministic(x)
        else:
            a, _ = self.actor_cpu.sample(x)
        return a[0].numpy().astype(np.float64)

    # --- learning -------------------------------------------------------------------------------
    def _norm(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.normalizer.enabled:
            return obs
        if self._norm_cache is None or self._norm_cache[0] != self.normalizer.count:
            mean = torch.as_tensor(self.normalizer.mean, dtype=torch.float32, device=self.device)
            std = torch.as_tensor(self.normalizer.std, dtype=torch.float32, device=self.device)
            self._norm_cache = (self.normalizer.count, mean, std)
        _, mean, std = self._norm_cache
        return ((obs - mean) / std).clamp_(-10.0, 10.0)

    def to_tensors(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v).to(self.device, non_blocking=True) for k, v in batch.items()}

    def update(self, batch: dict[str, np.ndarray], update_actor: bool = True) -> dict[str, torch.Tensor]:
        """One gradient step of the critics, then (optionally) of the actor and temperature.

        Returns detached scalar tensors; converting them to floats is left to the caller so the hot
        loop does not synchronise on every update.
        """
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            return self._update(self.to_tensors(batch), update_actor)

    def _update(self, b: dict[str, torch.Tensor], update_actor: bool) -> dict[str, torch.Tensor]:
        obs, next_obs = self._norm(b["obs"]), self._norm(b["next_obs"])
        alpha = self.log_alpha.detach().exp()

        # Soft Bellman target: r + γ(1 − terminated)(min_j Q'_j(s', a') − α log π(a'|s')), a' ~ π(·|s').
        # Truncation does not stop bootstrapping: only true terminations do.
        with torch.no_grad():
            next_action, next_log_pi = self.actor.sample(next_obs, self.generator)
            q_next = self.critic_target(next_obs, next_action)
            if self.cfg.critic_subset is not None:  # REDQ: min over a random subset of M critics
                idx = self.subset_rng.choice(self.cfg.n_critics, self.cfg.critic_subset, replace=False)
                q_next = q_next[torch.as_tensor(idx, device=self.device)]
            min_q_next = q_next.min(dim=0).values - alpha * next_log_pi
            target_q = b["reward"] + (1.0 - b["terminated"]) * self.cfg.gamma * min_q_next

        q = self.critic(obs, b["action"])
        q_loss = (q - target_q).pow(2).mean(dim=1).sum()  # sum over critics of each one's MSE
        self.critic_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        self.critic_opt.step()

        metrics = {"q_loss": q_loss.detach(), "q_mean": q.detach().mean()}
        if update_actor:
            metrics.update(self._update_actor_and_alpha(obs, alpha))

        # Polyak averaging θ' ← (1 − τ)θ' + τθ, every parameter in one fused call.
        with torch.no_grad():
            torch._foreach_lerp_(list(self.critic_target.parameters()), list(self.critic.parameters()), self.cfg.tau)
        self.updates += 1
        return metrics

    def _update_actor_and_alpha(self, obs: torch.Tensor, alpha: torch.Tensor) -> dict[str, torch.Tensor]:
        # Actor: minimise E[α log π(a|s) − Q(s, a)]. Critics are frozen so no gradient is spent on their weights.
        self.critic.requires_grad_(False)
        action, log_pi = self.actor.sample(obs, self.generator)
        q_pi = self.critic(obs, action)
        q_pi = q_pi.mean(dim=0) if self.cfg.critic_subset is not None else q_pi.min(dim=0).values
        pi_loss = (alpha * log_pi - q_pi).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        pi_loss.backward()
        self.actor_opt.step()
        self.critic.requires_grad_(True)
        metrics = {"pi_loss": pi_loss.detach(), "entropy": -log_pi.detach().mean()}

        # Temperature: minimise −α(log π + H̄), raising α when entropy is below the target H̄.
        if self.cfg.autotune_alpha:
            alpha_loss = -(self.log_alpha * (log_pi.detach() + self.target_entropy)).mean()
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()
            metrics["alpha_loss"] = alpha_loss.detach()
        return metrics

    # --- state ----------------------------------------------------------------------------------
    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Every tensor of the learner as flat numpy arrays, plus JSON-able metadata. No pickle."""
        tensors: dict[str, np.ndarray] = {}
        for prefix, module in (("actor", self.actor), ("critic", self.critic), ("critic_target", self.critic_target)):
            for k, v in module.state_dict().items():
                tensors[f"{prefix}.{k}"] = v.detach().cpu().numpy().copy()  # a snapshot, not a view of live weights
        tensors["log_alpha"] = self.log_alpha.detach().cpu().numpy().copy()
        meta: dict[str, Any] = {"updates": self.updates, "optimizers": {}}
        for name, opt in self._optimizers().items():
            sd = opt.state_dict()
            for pid, pstate in sd["state"].items():
                for key, value in pstate.items():
                    tensors[f"opt.{name}.{pid}.{key}"] = torch.as_tensor(value).detach().cpu().numpy().copy()
            meta["optimizers"][name] = {"param_groups": sd["param_groups"], "ids": list(sd["state"].keys())}
        for k, v in self.normalizer.state_dict().items():
            tensors[f"normalizer.{k}"] = v
        tensors["rng.torch_global"] = torch.get_rng_state().numpy()
        tensors["rng.generator"] = self.generator.get_state().cpu().numpy()
        meta["rng_subset"] = self.subset_rng.bit_generator.state
        return tensors, meta

    def load_state_dict(self, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        for prefix, module in (("actor", self.actor), ("critic", self.critic), ("critic_target", self.critic_target)):
            sd = {
                k[len(prefix) + 1 :]: torch.from_numpy(v.copy())
                for k, v in tensors.items()
                if k.startswith(prefix + ".")
            }
            module.load_state_dict(sd)
        with torch.no_grad():
            self.log_alpha.copy_(torch.from_numpy(tensors["log_alpha"].copy()))
        for name, opt in self._optimizers().items():
            info = meta["optimizers"][name]
            state: dict[int, dict[str, torch.Tensor]] = {}
            for pid in info["ids"]:
                prefix = f"opt.{name}.{pid}."
                state[int(pid)] = {
                    k[len(prefix) :]: torch.from_numpy(v.copy()).to(self.device)
                    for k, v in tensors.items()
                    if k.startswith(prefix)
                }
                if "step" in state[int(pid)]:  # Adam keeps `step` on the CPU unless capturable/fused
                    state[int(pid)]["step"] = state[int(pid)]["step"].cpu()
            opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})
        self.normalizer.load_state_dict(
            {k[len("normalizer.") :]: v for k, v in tensors.items() if k.startswith("normalizer.")}
        )
        self._norm_cache = None
        torch.set_rng_state(torch.from_numpy(tensors["rng.torch_global"].copy()))
        self.generator.set_state(torch.from_numpy(tensors["rng.generator"].copy()))
        self.subset_rng.bit_generator.state = meta["rng_subset"]
        self.updates = int(meta["updates"])
        self.sync_cpu_actor()

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"actor": self.actor_opt, "critic": self.critic_opt, "alpha": self.alpha_opt}

    def actor_tensors(self) -> dict[str, np.ndarray]:
        """The actor's weights (CPU numpy), for broadcasting and export."""
        return {k: v.detach().cpu().numpy() for k, v in self.actor.state_dict().items()}
