"""A clock that stands still until the test moves it."""

from __future__ import annotations

from datetime import datetime, timedelta


class FakeClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
