"""Data: embedded digits, CIFAR-10 batches, preprocessing and augmentation."""
__all__: list[str] = []
