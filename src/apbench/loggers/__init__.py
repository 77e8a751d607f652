"""Optional experiment trackers. The run record stays the source of truth; loggers only mirror it."""
from .wandb_logger import WandbLogger

__all__ = ["WandbLogger"]
