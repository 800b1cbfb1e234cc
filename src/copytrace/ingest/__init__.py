"""Bulk registration beyond one process: ``ray.py`` fans decoding and description out over Ray
(extra ``[ray]``) and registers the results through the Library's public API."""
