"""Layers: one flat function per operation, forward returns (out, cache), backward takes (dout, cache)."""
