"""Decoding only: files in, frames/windows with times in seconds out."""
