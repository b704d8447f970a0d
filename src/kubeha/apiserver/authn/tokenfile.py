"""Static bearer tokens from ``--token-auth-file`` (upstream's CSV: token,user,uid,"group1,group2")."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from kubeha.apiserver.authn import TokenAuthenticator, UserInfo


def parse_token_file(text: str) -> dict[str, UserInfo]:
    """token -> user. Blank lines and lines starting with # are skipped; at least token,user,uid."""
    users: dict[str, UserInfo] = {}
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for n, row in enumerate(csv.reader(lines), start=1):
        if len(row) < 3:
            raise ValueError(f"token file line {n}: need at least 3 columns (token,user,uid), got {len(row)}")
        token, name, uid = (c.strip() for c in row[:3])
        if not token or not name:
            raise ValueError(f"token file line {n}: empty token or user name")
        groups: tuple[str, ...] = ()
        if len(row) > 3 and row[3].strip():
            groups = tuple(g.strip() for g in row[3].split(",") if g.strip())
        users[token] = UserInfo(name, groups, uid)
    return users


class TokenFileAuthenticator(TokenAuthenticator):
    def __init__(self, users: dict[str, UserInfo]) -> None:
        self._users = users

    @classmethod
    def from_file(cls, path: str | Path) -> TokenFileAuthenticator:
        return cls(parse_token_file(Path(path).read_text()))

    async def authenticate_token(
        self, token: str, audiences: Sequence[str]
    ) -> tuple[UserInfo, list[str] | None] | None:
        user = self._users.get(token)
        if user is None:
            return None
        return user, None
