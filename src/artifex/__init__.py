"""artifex: generative models in JAX / Flax NNX.

The main names are here, resolved on first use so that ``import artifex`` stays cheap (no JAX,
TFDS or DataRax until a name needs them)::

    from artifex import DDPMConfig, DDPMModel, DiffusionTrainer, FitConfig, fit

The full paths (``artifex.generative_models.models.diffusion.ddpm.DDPMModel``, ...) stay valid.
"""

from artifex._lazy import lazy_exports
from artifex._logging import configure as _configure_logging

__version__ = "0.2.0"

_MODELS = "artifex.generative_models"
_EXPORTS = {
    # configuration and models
    "UNetBackboneConfig": f"{_MODELS}.core.configuration",
    "NoiseScheduleConfig": f"{_MODELS}.core.configuration",
    "DDPMConfig": f"{_MODELS}.core.configuration",
    "create_noise_schedule": f"{_MODELS}.core.noise_schedule",
    "DDPMModel": f"{_MODELS}.models.diffusion.ddpm",
    "VAEConfig": f"{_MODELS}.core.configuration.vae_config",
    "GANConfig": f"{_MODELS}.core.configuration.gan_config",
    "Generator": f"{_MODELS}.models.gan",
    "Discriminator": f"{_MODELS}.models.gan",
    "FlowConfig": f"{_MODELS}.core.configuration.flow_config",
    "FlowModel": f"{_MODELS}.models.flow.glow",
    "VAEModel": f"{_MODELS}.models.vae.vae",
    # training
    "DiffusionTrainer": f"{_MODELS}.training.trainers.diffusion_trainer",
    "DiffusionTrainingConfig": f"{_MODELS}.training.trainers.diffusion_trainer",
    "VAETrainer": f"{_MODELS}.training.trainers.vae_trainer",
    "VAETrainingConfig": f"{_MODELS}.training.trainers.vae_trainer",
    "GANTrainer": f"{_MODELS}.training.trainers.gan_trainer",
    "GANTrainingConfig": f"{_MODELS}.training.trainers.gan_trainer",
    "FlowTrainer": f"{_MODELS}.training.trainers.flow_trainer",
    "FlowTrainingConfig": f"{_MODELS}.training.trainers.flow_trainer",
    "TrainState": f"{_MODELS}.training.state",
    "Trainer": f"{_MODELS}.training.protocol",
    "fit": f"{_MODELS}.training.fit",
    "FitConfig": f"{_MODELS}.training.fit_config",
    "FitResult": f"{_MODELS}.training.fit",
    "Hook": f"{_MODELS}.training.hooks",
    "TrainingCheckpointer": f"{_MODELS}.training.checkpointing",
    "save_model": f"{_MODELS}.training.checkpointing",
    "load_model": f"{_MODELS}.training.checkpointing",
    # data and evaluation
    "make_train_iterator": "artifex.data",
    "load_image_dataset": "artifex.data",
    "MNISTQualityMetric": "artifex.evaluation",
    "evaluate_model": "artifex.evaluation",
    "evaluate_generator": "artifex.evaluation",
    "load_conditional_mnist": "artifex.pretrained",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

_configure_logging()
