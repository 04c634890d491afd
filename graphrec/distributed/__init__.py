"""Distributed training on Ray Train (the Ray issue). Ray is imported here and nowhere else:
``loaders/`` and ``models/`` stay plain PyTorch/PyG so they run without a cluster."""
