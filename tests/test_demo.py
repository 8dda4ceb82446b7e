"""`make demo` must keep working: every bundled sample reaches the state it should."""

from __future__ import annotations

import pytest

from devtools import demo


@pytest.mark.slow
def test_the_demo_settles_every_sample_as_expected(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--timeout", "120", "--workers", "2"]) == 0
    output = capsys.readouterr().out
    assert "Demo completed" in output
    assert "InputRejected" in output and "error report: signing-errors/" in output
    assert "Completed: Archived 5, Rejected 1, Skipped 3" in output and "duplicate_key" in output
