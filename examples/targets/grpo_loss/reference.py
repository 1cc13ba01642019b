"""grpo_loss reference: the clipped surrogate of PPO (Schulman et al. 2017) as GRPO uses
it per token (Shao et al. 2024, DeepSeekMath) with DAPO's asymmetric clip bounds (Yu et
al. 2025), averaged per sequence over its response tokens (a GSPO-style per-sequence
reduction). Masked log-probs are garbage and are selected away before any arithmetic.
float64 throughout; a fully masked row gives 0 (sum 0 over max(count, 1)).
Written against kiln's reference.py protocol: reference(inputs, scalars, sizes) -> outputs."""
import numpy as np


def reference(inputs, scalars, sizes):
    mask = inputs["mask"] != 0
    delta = np.where(mask, inputs["logp_new"], 0.0) - np.where(mask, inputs["logp_old"], 0.0)
    r = np.exp(delta)
    a = inputs["adv"][:, None]
    rc = np.clip(r, 1.0 - scalars["eps_lo"], 1.0 + scalars["eps_hi"])
    per_token = np.where(mask, -np.minimum(r * a, rc * a), 0.0)
    count = mask.sum(axis=1)
    return {"loss": per_token.sum(axis=1) / np.maximum(count, 1)}
