"""What every result records beside its numbers: the machine and the versions.

One probe for ``metrics.json`` of a run, the quality reports of ``graphrec compare``,
``graphrec bench`` and the other benchmarks of :mod:`graphrec.benchmark`: numbers from a
shared, noisy machine are only comparable with these next to them.
"""

from __future__ import annotations

import os
import platform


def machine() -> dict:
    """Cores, memory, architecture, processor and Python of this machine."""
    import psutil

    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
    }


def versions() -> dict:
    """Versions of the libraries that decide speed and results, torch's threads and the GPU
    (Ray's version is read from its package metadata: Ray is not imported outside
    ``graphrec.distributed``)."""
    from importlib import metadata

    import pyarrow
    import torch
    import torch_geometric

    from graphrec.samplers import compiled_sampler_available

    out = {
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "pyarrow": pyarrow.__version__,
        "compiled_sampler": compiled_sampler_available(),
        "threads": torch.get_num_threads(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        out["ray"] = metadata.version("ray")
    except metadata.PackageNotFoundError:
        out["ray"] = None
    try:
        import faiss

        out["faiss"] = faiss.__version__
    except ImportError:
        out["faiss"] = None
    return out


def environment() -> dict:
    """``machine()`` and ``versions()`` in one mapping."""
    return {**machine(), **versions()}
