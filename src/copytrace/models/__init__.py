"""Descriptor models: registry entries (data) and, for training, torch definitions."""
from copytrace.models.registry import DescriptorSpec, default_spec, get_spec, list_specs

__all__ = ["DescriptorSpec", "default_spec", "get_spec", "list_specs"]
