"""Reverse-process samplers: one step rule per file, one compiled loop for all.

``loop.run_sampler`` precomputes every per-step coefficient on the host in float64 and
runs the whole chain as one ``lax.scan``. Step rules (``SCHEDULERS``):

* ``"ddpm"`` (:mod:`.ddpm`): ancestral sampling from the posterior, stochastic.
* ``"ddim"`` (:mod:`.ddim`): DDIM, deterministic at ``eta = 0``, DDPM's noise at ``eta = 1``.
* ``"euler"`` (:mod:`.euler`): Euler on Karras et al.'s probability-flow ODE (= DDIM, eta 0).
* ``"heun"`` (:mod:`.heun`): Heun's second-order correction of it (two evaluations a step).
* ``"dpm_solver++"`` (:mod:`.dpm_solver`): DPM-Solver++(2M), multistep second order.

``SPACINGS`` places the sampling timesteps (``linspace``, ``leading``, ``trailing``).
"""

SCHEDULERS = ("ddpm", "ddim", "euler", "heun", "dpm_solver++")
#: Timestep spacings (Lin et al. 2024, Table 2); ``linspace`` is the default.
SPACINGS = ("linspace", "leading", "trailing")

__all__ = ["SCHEDULERS", "SPACINGS"]
