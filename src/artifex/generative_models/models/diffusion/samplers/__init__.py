"""Reverse-process samplers: one step rule per file, one compiled loop for all.

``loop.run_sampler`` precomputes every per-step coefficient on the host in float64 and
runs the whole chain as one ``lax.scan``; ``ddpm.ddpm_step`` and ``ddim.ddim_step`` say
how one step moves ``x_t`` to ``x_s``.
"""

SCHEDULERS = ("ddpm", "ddim")
