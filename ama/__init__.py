"""ama: a version-controlled, immutable store for datasets, models and configurations."""

__version__ = "0.1.0"
