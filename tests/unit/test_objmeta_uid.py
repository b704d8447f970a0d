"""Object uids are random version-4 UUIDs in their canonical text form."""

from __future__ import annotations

import uuid

from kubeha.apiserver import objmeta


def test_new_uid_is_a_canonical_v4_uuid() -> None:
    seen = set()
    for _ in range(2000):
        text = objmeta.new_uid()
        u = uuid.UUID(text)
        assert str(u) == text
        assert u.version == 4 and u.variant == uuid.RFC_4122
        seen.add(text)
    assert len(seen) == 2000


def test_a_forked_child_draws_its_own_uids() -> None:
    import os

    objmeta.new_uid()  # the pool is filled
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(w, objmeta.new_uid().encode())
        os._exit(0)
    os.close(w)
    child = os.read(r, 64).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert child != objmeta.new_uid()
