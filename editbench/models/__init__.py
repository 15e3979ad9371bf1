"""Model loading (hub name | local dir | built-in short name) and architecture adapters."""
from editbench.models.adapter import ModelAdapter, adapter_for

__all__ = ["ModelAdapter", "adapter_for"]
