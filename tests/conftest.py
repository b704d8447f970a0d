"""Fixtures shared by every test tier; harness code lives in tests/support/."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.support.apiserver import ApiServer, ApiServerFactory
from tests.support.pki import pki

__all__ = ["pki"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    """Attach the api-server logs a failing test used, so a red test explains itself."""
    report = yield
    if isinstance(report, pytest.TestReport) and report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            servers: list[ApiServer] = []
            if isinstance(value, ApiServer):
                servers = [value]
            elif isinstance(value, ApiServerFactory):
                servers = value.servers
            elif isinstance(value, list) and all(isinstance(v, ApiServer) for v in value):
                servers = value
            for server in servers:
                report.sections.append((f"{server.name} log (fixture {name}, tail)", server.log(200)))
    return report
