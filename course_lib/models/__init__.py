"""Models with `params` and `loss(X, y=None)`."""
__all__: list[str] = []
