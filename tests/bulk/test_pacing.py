"""The bulk share paces creations without spending its tokens on creations that go back to the queue."""

from __future__ import annotations

import pytest

from shared.bulk.pacing import _ShareThenConnection
from shared.connective.ratelimit import LocalRateLimiter, RateLimitDeferred


def test_a_creation_without_a_connection_token_leaves_the_share_unspent() -> None:
    share = LocalRateLimiter(1, 60.0, 0.0)
    connection = LocalRateLimiter(1, 60.0, 0.0)
    assert connection.acquire(0).leave()  # other work took the connection's whole budget
    paced = _ShareThenConnection(share, connection)
    with pytest.raises(RateLimitDeferred):
        paced.acquire(0)
    # The creation went back to its queue unsent: the share's one token is still there for it.
    assert share.acquire(0).leave()
