"""Run a descriptor: one ``Encoder`` interface, backends chosen by name."""
from copytrace.runtime.base import Encoder, load_encoder, prepare_images, resolve_precision

__all__ = ["Encoder", "load_encoder", "prepare_images", "resolve_precision"]
