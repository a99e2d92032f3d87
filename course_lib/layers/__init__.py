"""Layers: one flat function per operation.

A forward returns (out, cache); its backward takes (dout, cache).
"""
