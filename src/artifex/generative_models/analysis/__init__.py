"""Analysis tools for diffusion models: schedules, forward process, per-timestep error,
latent interpolation and sampler comparisons. Figures need matplotlib (``examples`` extra),
imported only when a figure is drawn."""

from artifex.generative_models.analysis.forward_process import (
    FORWARD_TIMESTEPS,
    default_timesteps,
    forward_process_images,
    save_forward_process,
)
from artifex.generative_models.analysis.interpolation import (
    angles_to_start,
    interpolate_and_decode,
    interpolation_study,
    save_interpolation_strips,
    slerp,
)
from artifex.generative_models.analysis.noise_prediction import (
    evenly_spaced_timesteps,
    noise_prediction_mse,
    plot_noise_prediction_mse,
)
from artifex.generative_models.analysis.sampler_comparison import (
    SamplerResult,
    SamplerSetting,
    compare_samplers,
    comparison_settings,
    load_quality_metric,
    time_sampler,
)
from artifex.generative_models.analysis.schedules import (
    SCHEDULE_TYPES,
    plot_beta_schedules,
    schedule_curves,
)

__all__ = [
    "FORWARD_TIMESTEPS",
    "SCHEDULE_TYPES",
    "SamplerResult",
    "SamplerSetting",
    "angles_to_start",
    "compare_samplers",
    "comparison_settings",
    "default_timesteps",
    "evenly_spaced_timesteps",
    "forward_process_images",
    "interpolate_and_decode",
    "interpolation_study",
    "load_quality_metric",
    "noise_prediction_mse",
    "plot_beta_schedules",
    "plot_noise_prediction_mse",
    "save_forward_process",
    "save_interpolation_strips",
    "schedule_curves",
    "slerp",
    "time_sampler",
]
