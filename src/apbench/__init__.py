"""apbench: activation prompts and parameter-efficient transfer of frozen vision backbones, benchmarked."""
__version__ = "0.1.0"
