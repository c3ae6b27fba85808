"""Renderers: each turns a traced result into an object (text, rich renderable, DOT, bytes).

Renderers never print or write files; only :mod:`gradviz.cli` does.
"""
