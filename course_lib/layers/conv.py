__all__: list[str] = []  # filled in by the module owner
