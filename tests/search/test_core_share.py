"""Batch embedding leaves alone the cores other processes are busy on, and takes them all back when they stop."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from search.embeddings import core_share
from search.embeddings.core_share import CoreShare, machine_busy_seconds


class FakeMachine:
    """A clock, the machine's busy CPU seconds and this process's own, advanced by hand."""

    def __init__(self, monkeypatch) -> None:
        self.now = self.machine = self.own = 0.0
        monkeypatch.setattr(core_share, "monotonic", lambda: self.now)
        monkeypatch.setattr(core_share, "machine_busy_seconds", lambda: self.machine)
        monkeypatch.setattr(core_share, "own_busy_seconds", lambda: self.own)

    def run(self, seconds: float, *, own_cores: float, other_cores: float) -> None:
        self.now += seconds
        self.own += own_cores * seconds
        self.machine += (own_cores + other_cores) * seconds


def test_threads_follow_what_other_processes_use(monkeypatch) -> None:
    machine = FakeMachine(monkeypatch)
    share = CoreShare(given=4)
    # Nothing measured yet: every thread it was given
    assert share.threads() == 4
    # Another process busy on one and a half cores beside the model: two of the four are left to it
    machine.run(0.2, own_cores=2.5, other_cores=1.5)
    assert share.threads() == 2
    # A window too short to say anything keeps the last decision
    machine.run(0.01, own_cores=0.0, other_cores=0.0)
    assert share.threads() == 2
    # Others busy on every core: still one thread, never none
    machine.run(0.2, own_cores=0.5, other_cores=4.0)
    assert share.threads() == 1
    # Alone again: all four
    machine.run(0.2, own_cores=4.0, other_cores=0.05)
    assert share.threads() == 4


def test_one_thread_given_or_no_proc_stat_changes_nothing(monkeypatch) -> None:
    FakeMachine(monkeypatch).run(1.0, own_cores=1.0, other_cores=3.0)
    assert CoreShare(given=1).threads() == 1
    monkeypatch.setattr(core_share, "machine_busy_seconds", lambda: None)
    share = CoreShare(given=3)
    assert [share.threads(), share.threads()] == [3, 3]


@pytest.mark.skipif(machine_busy_seconds() is None, reason="reads Linux's /proc/stat")
def test_the_machine_counter_moves_with_work() -> None:
    before = machine_busy_seconds()
    deadline = core_share.own_busy_seconds() + 0.1
    while core_share.own_busy_seconds() < deadline:  # a tenth of a second of CPU: ten clock ticks at least
        pass
    assert machine_busy_seconds() > before > 0


def test_batch_embedding_gives_the_threads_back_when_it_ends(toy_encoder, monkeypatch) -> None:
    # Given a process whose torch uses two threads, while others keep the machine busy
    toy_encoder._core_share = None  # a fresh tracker: nothing measured yet
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    machine = FakeMachine(monkeypatch)
    seen = []
    forward = toy_encoder._image_forward
    monkeypatch.setattr(toy_encoder, "_image_forward", lambda pixels: seen.append(torch.get_num_threads())
                        or machine.run(0.2, own_cores=1.0, other_cores=1.5) or forward(pixels))  # fmt: skip
    try:
        items = [(i, Image.new("RGB", (40, 40), (40 * i, 40 * i, 40 * i))) for i in range(4)]
        # When it embeds batches sharing the cores
        batches = list(toy_encoder.encode_image_batches(items, batch_size=1, share_cores=True))
        # Then the first batch had both threads, the later ones left a core to the others, and both came back
        assert [len(ids) for ids, _, _ in batches] == [1, 1, 1, 1]
        assert seen[0] == 2
        assert set(seen[2:]) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
