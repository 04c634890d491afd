"""A DataLoader worker's handle-sharing thread stays quiet when the main process hangs up
in the middle of a hand-over (what an interrupted main process does), and nothing else is
silenced."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

CHILD = textwrap.dedent(
    """
    import os, socket, sys, time
    from multiprocessing import resource_sharer
    if sys.argv[1] == "quiet":
        from graphrec.train.batches import quiet_handle_sharing
        quiet_handle_sharing()
    r, w = os.pipe()
    shared = resource_sharer.DupFd(w)          # starts the sharer's listener thread
    address, _ = shared._id
    peer = socket.socket(socket.AF_UNIX)
    peer.connect(address)
    peer.close()                                # the receiving side goes away mid-handshake
    time.sleep(1.0)
    if sys.argv[2] == "raise":
        raise ValueError("an ordinary error still prints")
    """
)


def child(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.skipif(sys.platform != "linux", reason="file-descriptor sharing over AF_UNIX")
def test_a_hung_up_hand_over_prints_nothing_in_the_worker():
    loud = child("default", "exit")
    assert "resource_sharer" in loud.stderr, loud.stderr  # what the hook is there for
    quiet = child("quiet", "exit")
    assert quiet.returncode == 0, quiet.stderr
    assert "resource_sharer" not in quiet.stderr and "Traceback" not in quiet.stderr
    other = child("quiet", "raise")
    assert "ValueError: an ordinary error still prints" in other.stderr
    assert "resource_sharer" not in other.stderr


def test_the_epoch_order_is_random_samplers_without_its_list():
    """Same seed, same order as torch's RandomSampler (so seeds and checkpoints keep their
    meaning), a new order each epoch, every index once."""
    from torch.utils.data import RandomSampler

    from graphrec.train.batches import EpochOrder

    n = 3 * EpochOrder.CHUNK + 17
    torch.manual_seed(7)
    ours = [list(EpochOrder(n)) for _ in range(2)]
    torch.manual_seed(7)
    sampler = RandomSampler(range(n))
    theirs = [list(sampler) for _ in range(2)]
    assert ours == theirs
    assert sorted(ours[0]) == list(range(n)) and ours[0] != ours[1]
