"""Files an untrusted process wrote while it may still run (grader/harvest/untrusted_file.py):
read or copied only when the opened descriptor is a regular file under the cap; a link, a pipe or
a huge file is skipped, and nothing blocks."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from grader.harvest import untrusted_file
from grader.measure import head_start, worker


def test_only_a_regular_file_under_the_cap_is_copied(tmp_path):
    (tmp_path / "real.keras").write_bytes(b"x" * 100)
    (tmp_path / "link.keras").symlink_to(tmp_path / "real.keras")
    os.mkfifo(tmp_path / "pipe.keras")  # opened naively, it would block until a writer came
    (tmp_path / "big.keras").write_bytes(b"x" * 101)
    out = tmp_path / "out"
    out.mkdir()
    assert untrusted_file.copy(tmp_path / "real.keras", out / "real.keras", 100)
    assert (out / "real.keras").read_bytes() == b"x" * 100
    for name in ("link.keras", "pipe.keras", "big.keras", "absent.keras"):
        assert not untrusted_file.copy(tmp_path / name, out / name, 100), name
        assert not (out / name).exists()
    # A target that exists is never written through (the grader's own files stay its own).
    assert not untrusted_file.copy(tmp_path / "real.keras", out / "real.keras", 100)


def test_json_is_read_only_from_a_small_regular_file(tmp_path):
    (tmp_path / "ok.json").write_text('{"a": 1}')
    (tmp_path / "list.json").write_text("[1]")
    os.mkfifo(tmp_path / "pipe.json")
    (tmp_path / "link.json").symlink_to(tmp_path / "ok.json")
    assert untrusted_file.read_json(tmp_path / "ok.json") == {"a": 1}
    for name in ("list.json", "pipe.json", "link.json", "absent.json"):
        assert untrusted_file.read_json(tmp_path / name) is None, name
    assert untrusted_file.read_json(tmp_path / "ok.json", max_bytes=4) is None


def test_an_early_export_swapped_for_a_pipe_does_not_hang_the_measuring_process(tmp_path):
    """The watch saw a regular file; by the time it is opened, the kernel has put a pipe there.
    The early training gives up at once (the design is trained at the end instead)."""
    early = tmp_path / "head-start"
    early.mkdir()
    os.mkfifo(early / "model-0.keras")
    watch = head_start.Watch({"dir": str(early), "objects": {"model": None}, "training": {},
                              "images": str(tmp_path / "images.npy")})
    designs = head_start.Designs()
    root = tmp_path / "measure"
    root.mkdir()
    done = threading.Event()
    thread = threading.Thread(target=lambda: (worker._train_early(
        "model", early / "model-0.keras", watch, designs, root), done.set()), daemon=True)
    thread.start()
    assert done.wait(10), "the early training blocked on a pipe"
    assert not designs.knows("anything") and list((root / "early").iterdir()) == []
