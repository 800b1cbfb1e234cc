"""Temporal alignment of query and reference frames: similarity matrix -> copied segments."""
from copytrace.align.base import Aligner, aligner_names, get_aligner, similarity_matrix

__all__ = ["Aligner", "aligner_names", "get_aligner", "similarity_matrix"]
