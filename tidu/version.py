"""The package version (one place: tidu, the CLI and model files read it)."""
__version__ = "0.1.0"
