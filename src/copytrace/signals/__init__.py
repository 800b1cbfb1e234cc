"""Signals: one module per kind of evidence (see ``signals/base.py`` for the interface)."""
