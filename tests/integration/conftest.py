"""Real Daphne processes (tests/servers.py) against the test database and a real Redis."""

import pytest

from tests.servers import start_daphne


@pytest.fixture
def daphne_pair(transactional_db, redis_url, postgres):
    """Two Daphne processes sharing the test PostgreSQL database and one Redis."""
    processes = [start_daphne(env_overrides={"REDIS_URL": redis_url}) for _ in range(2)]
    yield processes
    for process in processes:
        process.stop()
