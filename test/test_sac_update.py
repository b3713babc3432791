# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""One SAC update against the paper, recomputed by hand on tiny networks.

Every reference value here is computed independently in float64 from the networks' raw weights
(no call into the code under test's forward passes), with the same noise draws the agent makes.
Haarnoja et al. 2018 (arXiv:1812.05905), REDQ (Chen et al. 2021), DroQ (Hiraoka et al. 2022).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sac_robot.core.config import SACConfig
from sac_robot.core.networks import LOG_STD_MAX, LOG_STD_MIN, EnsembleLayerNorm
from sac_robot.core.sac import SAC

OBS, ACT, B = 3, 2, 5
LOW = np.array([-1.0, -3.0])  # asymmetric bounds: scale (1.5, 2.0), bias (0.5, -1.0)
HIGH = np.array([2.0, 1.0])


def make_agent(seed: int = 0, **overrides) -> SAC:
    kw = {"hidden_sizes": [4], "device": "cpu", "normalize_obs": False, "batch_size": B, "init_alpha": 0.5}
    kw.update(overrides)
    return SAC(OBS, ACT, LOW, HIGH, SACConfig(**kw), seed=seed)


def make_batch(seed: int = 0, terminated=(0, 1, 0, 0, 1), truncated=(0, 0, 1, 1, 0)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "obs": rng.normal(size=(B, OBS)).astype(np.float32),
        "action": rng.uniform(LOW, HIGH, size=(B, ACT)).astype(np.float32),
        "reward": (3.0 * rng.normal(size=B)).astype(np.float32),
        "next_obs": rng.normal(size=(B, OBS)).astype(np.float32),
        "terminated": np.asarray(terminated, np.float32),
        "truncated": np.asarray(truncated, np.float32),
        "intervened": np.zeros(B, np.float32),
    }


# --- independent float64 reference of the networks ---------------------------------------------
def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().double() for k, v in module.state_dict().items()}


def actor_ref(p: dict[str, torch.Tensor], obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    h, i = obs, 0
    while f"trunk.{i}.weight" in p:
        h = torch.relu(h @ p[f"trunk.{i}.weight"].T + p[f"trunk.{i}.bias"])
        i += 2
    out = h @ p["head.weight"].T + p["head.bias"]
    mean, raw = out[:, :ACT], out[:, ACT:]
    log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(raw) + 1.0)
    return mean, log_std


def sample_ref(p: dict[str, torch.Tensor], obs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squashed-Gaussian sample and log π: Normal log-density minus log|d(scale·tanh u + bias)/du|."""
    mean, log_std = actor_ref(p, obs)
    std = log_std.exp()
    u = mean + std * noise.double()
    scale, bias = p["action_scale"], p["action_bias"]
    log_det = torch.log(scale) + 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))  # log(scale·(1 − tanh²u))
    log_prob = torch.distributions.Normal(mean, std).log_prob(u).sum(-1) - log_det.sum(-1)
    return torch.tanh(u) * scale + bias, log_prob


def critic_ref(p: dict[str, torch.Tensor], obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """Plain (no dropout / LayerNorm) ensemble with one hidden layer: Q as (N, B)."""
    x = torch.cat([obs, act], dim=-1)
    h = torch.relu(torch.einsum("bi,nio->nbo", x, p["net.0.weight"]) + p["net.0.bias"])
    return (torch.einsum("nbi,nio->nbo", h, p["net.2.weight"]) + p["net.2.bias"]).squeeze(-1)


def clone_generator(agent: SAC) -> torch.Generator:
    g = torch.Generator()
    g.set_state(agent.generator.get_state())
    return g


def t64(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def norm_ref(agent: SAC, x: np.ndarray) -> torch.Tensor:
    if not agent.normalizer.enabled:
        return t64(x)
    n = agent.normalizer
    return t64(np.clip((x - n.mean) / np.sqrt(n.var + 1e-8), -10.0, 10.0))


def soft_target_ref(agent: SAC, batch, noise, subset=None, truncation_ends=False) -> torch.Tensor:
    """r + γ(1 − d)(min_j Q'_j(s', a') − α log π(a'|s')), d = terminated (or, wrongly, terminated|truncated)."""
    next_obs = norm_ref(agent, batch["next_obs"])
    a2, logp2 = sample_ref(weights(agent.actor), next_obs, noise)
    q_next = critic_ref(weights(agent.critic_target), next_obs, a2)
    if subset is not None:
        q_next = q_next[list(subset)]
    alpha = agent.alpha
    done = t64(batch["terminated"])
    if truncation_ends:
        done = torch.maximum(done, t64(batch["truncated"]))
    return t64(batch["reward"]) + agent.cfg.gamma * (1.0 - done) * (q_next.min(0).values - alpha * logp2)


def critic_loss_ref(agent: SAC, batch, target: torch.Tensor) -> float:
    q = critic_ref(weights(agent.critic), norm_ref(agent, batch["obs"]), t64(batch["action"]))
    return float(((q - target) ** 2).mean(dim=1).sum())


# --- tests --------------------------------------------------------------------------------------
def test_log_prob_is_tanh_squashed_gaussian_with_change_of_variables():
    agent = make_agent()
    obs = torch.as_tensor(np.random.default_rng(3).normal(scale=2.0, size=(64, OBS)), dtype=torch.float32)
    g = clone_generator(agent)
    noise = torch.randn((64, ACT), generator=clone_generator(agent))
    with torch.no_grad():
        action, log_prob = agent.actor.sample(obs, g)
    ref_action, ref_log_prob = sample_ref(weights(agent.actor), obs.double(), noise)
    assert action.shape == (64, ACT) and log_prob.shape == (64,)
    np.testing.assert_allclose(action.double().numpy(), ref_action.numpy(), rtol=0, atol=1e-5)
    # the code adds 1e-6 inside the log for stability: a few 1e-4 at most here, far below the
    # log(scale) = log 1.5 + log 2 ≈ 1.1 that a missing scale term would cost
    np.testing.assert_allclose(log_prob.double().numpy(), ref_log_prob.numpy(), rtol=0, atol=5e-4)
    assert torch.all(action >= torch.as_tensor(LOW, dtype=torch.float32))
    assert torch.all(action <= torch.as_tensor(HIGH, dtype=torch.float32))
    # deterministic action is the squashed mean
    mean, _ = actor_ref(weights(agent.actor), obs.double())
    det = torch.tanh(mean) * t64((HIGH - LOW) / 2) + t64((HIGH + LOW) / 2)
    with torch.no_grad():
        np.testing.assert_allclose(agent.actor.deterministic(obs).double().numpy(), det.numpy(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("normalize", [False, True])
def test_critic_loss_uses_soft_bellman_target(normalize):
    agent = make_agent(gamma=0.9, normalize_obs=normalize)
    if normalize:  # non-trivial statistics, so un-normalised inputs would give a different loss
        agent.normalizer.update(np.random.default_rng(7).normal(loc=2.0, scale=3.0, size=(50, OBS)))
    batch = make_batch()
    noise = torch.randn((B, ACT), generator=clone_generator(agent))
    target = soft_target_ref(agent, batch, noise)
    expected = critic_loss_ref(agent, batch, target)

    metrics = agent.update(batch)
    q_loss = float(metrics["q_loss"])
    assert q_loss == pytest.approx(expected, rel=1e-5, abs=1e-5)
    assert agent.updates == 1


def test_truncated_transitions_still_bootstrap_terminated_ones_do_not():
    agent = make_agent(gamma=0.99)
    batch = make_batch(terminated=(0, 1, 0, 0, 1), truncated=(0, 0, 1, 1, 1))
    noise = torch.randn((B, ACT), generator=clone_generator(agent))
    right = critic_loss_ref(agent, batch, soft_target_ref(agent, batch, noise))
    wrong = critic_loss_ref(agent, batch, soft_target_ref(agent, batch, noise, truncation_ends=True))
    no_mask = critic_loss_ref(
        agent, batch, soft_target_ref(agent, {**batch, "terminated": np.zeros(B, np.float32)}, noise)
    )
    assert abs(right - wrong) > 1e-2 and abs(right - no_mask) > 1e-2  # the batch can tell them apart
    q_loss = float(agent.update(batch)["q_loss"])
    assert q_loss == pytest.approx(right, rel=1e-5, abs=1e-5)


def test_actor_loss_and_its_gradient_reaches_only_the_actor():
    agent = make_agent()
    batch = make_batch(1)
    g = clone_generator(agent)
    torch.randn((B, ACT), generator=g)  # the target's next-action noise is drawn first
    noise_pi = torch.randn((B, ACT), generator=g)  # then for the actor loss
    actor_before = weights(agent.actor)
    alpha = agent.alpha

    seen = {}
    real_step = agent.critic_opt.step

    def spy_step(*args, **kwargs):
        out = real_step(*args, **kwargs)
        seen.setdefault("critic", [])
        seen["critic"].append({k: v.detach().clone() for k, v in agent.critic.state_dict().items()})
        seen["grads"] = [p.grad.detach().clone() for p in agent.critic.parameters()]
        return out

    agent.critic_opt.step = spy_step
    metrics = agent.update(batch)

    assert len(seen["critic"]) == 1, "one critic step per update"
    critic_after_critic_step = seen["critic"][0]
    for k, v in agent.critic.state_dict().items():
        assert torch.equal(v, critic_after_critic_step[k]), f"actor step changed critic weight {k}"
    for p, grad in zip(agent.critic.parameters(), seen["grads"], strict=True):
        assert p.grad is None or torch.equal(p.grad, grad), "actor loss back-propagated into the critics"
    assert all(p.requires_grad for p in agent.critic.parameters()), "critics must be trainable again"
    assert any(not torch.equal(v.double(), actor_before[k]) for k, v in agent.actor.state_dict().items())

    # α log π(a|s) − min_j Q_j(s, a), a ~ π(·|s) from the pre-step actor, Q from the post-step critics
    obs = t64(batch["obs"])
    a, logp = sample_ref(actor_before, obs, noise_pi)
    q = critic_ref({k: v.double() for k, v in critic_after_critic_step.items()}, obs, a)
    expected = float((alpha * logp - q.min(0).values).mean())
    assert float(metrics["pi_loss"]) == pytest.approx(expected, rel=1e-5, abs=1e-5)
    assert float(metrics["entropy"]) == pytest.approx(float(-logp.mean()), rel=1e-4, abs=1e-4)


def test_polyak_update_of_target_critics():
    tau = 0.3
    agent = make_agent(tau=tau)
    agent.update(make_batch(0))  # so that target and online critics differ before the checked update
    before = {k: v.detach().clone().double() for k, v in agent.critic_target.state_dict().items()}
    assert any(not torch.equal(before[k], v.double()) for k, v in agent.critic.state_dict().items())
    agent.update(make_batch(1))
    online = agent.critic.state_dict()
    for k, v in agent.critic_target.state_dict().items():
        expected = (1.0 - tau) * before[k] + tau * online[k].double()
        torch.testing.assert_close(v.double(), expected, rtol=0, atol=1e-6, msg=f"target {k}")
        assert not torch.equal(v.double(), before[k])
    assert not any(p.requires_grad for p in agent.critic_target.parameters())


@pytest.mark.parametrize(("target_entropy", "direction"), [(50.0, +1), (-50.0, -1)])
def test_temperature_rises_below_target_entropy_and_falls_above(target_entropy, direction):
    agent = make_agent(target_entropy=target_entropy, init_alpha=0.5)
    start = agent.alpha
    metrics = agent.update(make_batch())
    entropy = float(metrics["entropy"])
    assert (entropy < target_entropy) == (direction > 0)
    assert np.sign(agent.alpha - start) == direction
    for seed in range(1, 4):  # keeps moving the same way
        prev = agent.alpha
        agent.update(make_batch(seed))
        assert np.sign(agent.alpha - prev) == direction


def test_fixed_temperature_does_not_move():
    agent = make_agent(autotune_alpha=False, init_alpha=0.2)
    agent.update(make_batch())
    assert agent.alpha == pytest.approx(0.2, rel=1e-6)


class FixedSubset:
    """Stands in for subset_rng: records the call and returns known critic indices."""

    def __init__(self, idx):
        self.idx = np.asarray(idx)
        self.calls = []

    def choice(self, n, m, replace=True):
        self.calls.append((n, m, replace))
        return self.idx


def test_redq_target_uses_min_over_the_chosen_subset():
    agent = make_agent(n_critics=5, critic_subset=2, gamma=0.95)
    batch = make_batch(2)
    picker = FixedSubset([4, 1])
    agent.subset_rng = picker
    g = clone_generator(agent)
    noise_next, noise_pi = torch.randn((B, ACT), generator=g), torch.randn((B, ACT), generator=g)
    expected = critic_loss_ref(agent, batch, soft_target_ref(agent, batch, noise_next, subset=[4, 1]))
    all_five = critic_loss_ref(agent, batch, soft_target_ref(agent, batch, noise_next))
    assert abs(expected - all_five) > 1e-3  # the subset matters for this batch
    actor_before, alpha = weights(agent.actor), agent.alpha

    metrics = agent.update(batch)
    assert picker.calls == [(5, 2, False)]
    assert float(metrics["q_loss"]) == pytest.approx(expected, rel=1e-5, abs=1e-5)
    # REDQ (Chen et al. 2021, Alg. 1): the policy loss averages all N critics
    obs = t64(batch["obs"])
    a, logp = sample_ref(actor_before, obs, noise_pi)
    q = critic_ref(weights(agent.critic), obs, a)
    assert float(metrics["pi_loss"]) == pytest.approx(float((alpha * logp - q.mean(0)).mean()), rel=1e-5, abs=1e-5)


def test_redq_subset_rng_draws_distinct_critics():
    agent = make_agent(n_critics=10, critic_subset=2)
    seen = []
    real = agent.subset_rng

    class Spy:
        def choice(self, *args, **kwargs):
            out = real.choice(*args, **kwargs)
            seen.append(tuple(int(i) for i in out))
            return out

    agent.subset_rng = Spy()
    for seed in range(6):
        agent.update(make_batch(seed))
    assert len(seen) == 6
    assert all(len(set(s)) == 2 and all(0 <= i < 10 for i in s) for s in seen)
    assert len(set(seen)) > 1


def test_droq_critics_build_train_and_differ_from_plain():
    batch = make_batch()
    plain = make_agent()
    droq = make_agent(critic_dropout=0.2, critic_layernorm=True)
    kinds = [type(m).__name__ for m in droq.critic.net]
    assert kinds[:4] == ["EnsembleLinear", "Dropout", "EnsembleLayerNorm", "ReLU"]
    assert not any(isinstance(m, (torch.nn.Dropout, EnsembleLayerNorm)) for m in plain.critic.net)
    x, a = torch.as_tensor(batch["obs"]), torch.as_tensor(batch["action"])
    torch.manual_seed(0)
    assert not torch.equal(droq.critic(x, a), droq.critic(x, a)), "dropout should be active in training"

    m_plain, m_droq = plain.update(batch), droq.update(batch)
    for m in (m_plain, m_droq):
        assert all(math.isfinite(float(v)) for v in m.values())
    assert float(m_droq["q_loss"]) != float(m_plain["q_loss"])

    ln_only = make_agent(critic_layernorm=True)
    assert torch.equal(ln_only.critic(x, a), ln_only.critic(x, a))  # LayerNorm alone is deterministic
    assert not torch.allclose(ln_only.critic(x, a), make_agent().critic(x, a))
    ln_params = {k for k, _ in ln_only.critic.named_parameters()}
    before = {k: v.detach().clone() for k, v in ln_only.critic.named_parameters()}
    ln_only.update(batch)
    after = dict(ln_only.critic.named_parameters())
    assert any(not torch.equal(before[k], after[k]) for k in ln_params if k.startswith("net.1."))


def test_bfloat16_precision_runs_an_update_with_finite_losses():
    batch = make_batch()
    fp32 = make_agent()
    bf16 = make_agent(precision="bfloat16")
    m32, m16 = fp32.update(batch), bf16.update(batch)
    for name in ("q_loss", "pi_loss", "alpha_loss"):
        v16, v32 = float(m16[name]), float(m32[name])
        assert math.isfinite(v16)
        assert v16 == pytest.approx(v32, rel=0.1, abs=0.05), name
    assert (float(m16["q_loss"]), float(m16["pi_loss"])) != (float(m32["q_loss"]), float(m32["pi_loss"]))
    # weights, temperature and optimiser state stay float32
    for module in (bf16.actor, bf16.critic, bf16.critic_target):
        assert all(p.dtype == torch.float32 for p in module.parameters())
    assert bf16.log_alpha.dtype == torch.float32
    for _ in range(3):
        m16 = bf16.update(batch)
    assert all(math.isfinite(float(v)) for v in m16.values())
    assert all(torch.isfinite(p).all() for p in bf16.critic.parameters())
