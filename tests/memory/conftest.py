"""The store tests' engines as fixtures: every engine, the shared ones, or one of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.memory.backends import Backend, make_backend


@pytest.fixture(params=["sqlite", "postgres", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async for made in make_backend(request.param, tmp_path):
        yield made


@pytest.fixture(params=["postgres", "redis"])
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Only the engines that several processes share."""
    async for made in make_backend(request.param, tmp_path):
        yield made


@pytest.fixture
async def redis_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    async for made in make_backend("redis", tmp_path):
        yield made


@pytest.fixture
async def postgres_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    async for made in make_backend("postgres", tmp_path):
        yield made
