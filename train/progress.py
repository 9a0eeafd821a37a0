"""A dependency-free progress bar for long jobs (stderr; a redrawn line on a terminal, periodic lines otherwise)."""
from __future__ import annotations

import sys
import time
from typing import Dict, Optional, TextIO


def _clock(s: float) -> str:
    s = int(max(0, s))
    h, r = divmod(s, 3600)
    m, s = divmod(r, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    def __init__(self, total: int, start: int = 0, stream: Optional[TextIO] = None, enabled: bool = True,
                 log_every_s: float = 10.0, lines_only: bool = False):
        self.total, self.start, self.it = total, start, start
        self.stream = stream or sys.stderr
        self.tty = enabled and not lines_only and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = enabled
        self.t0 = time.time()
        self.last_draw = 0.0
        self.log_every_s = log_every_s
        self.fields: Dict[str, str] = {}

    def rate(self) -> float:
        dt = time.time() - self.t0
        return (self.it - self.start) / dt if dt > 0 else 0.0

    def eta(self) -> float:
        r = self.rate()
        return (self.total - self.it) / r if r > 0 else float("inf")

    def line(self) -> str:
        frac = self.it / self.total if self.total else 1.0
        bar = "#" * int(frac * 24)
        extra = " ".join(f"{k} {v}" for k, v in self.fields.items())
        eta = _clock(self.eta()) if self.eta() != float("inf") else "--:--"
        return (f"[{bar:<24}] {self.it}/{self.total} {extra} {self.rate():.2f} it/s "
                f"elapsed {_clock(time.time() - self.t0)} ETA {eta}")

    def update(self, it: int, force: bool = False, **fields: str) -> None:
        self.it = it
        self.fields.update(fields)
        if not self.enabled:
            return
        now = time.time()
        if self.tty:
            if force or now - self.last_draw > 0.2:
                self.stream.write("\r\x1b[K" + self.line())
                self.stream.flush()
                self.last_draw = now
        elif force or now - self.last_draw > self.log_every_s:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self.last_draw = now

    def message(self, text: str) -> None:
        """A log line that does not break the bar."""
        if self.tty:
            self.stream.write("\r\x1b[K" + text + "\n" + self.line())
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
        self.enabled = False
