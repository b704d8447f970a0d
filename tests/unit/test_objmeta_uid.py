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
