"""Crash points: named steps at which a test makes ama die as a power cut would (and hold
points, at which a test makes a step wait while it changes the world under it).

With ``AMA_CRASH_AT=NAME`` in its environment, a process that reaches the step ``NAME``
kills itself with SIGKILL: no ``finally``, no ``atexit``, no flush, no lock released. The
tests of ama's recovery run a command so, run it again without the variable, and compare
the result with an uninterrupted run. With ``AMA_CRASH_ONCE=PATH`` as well, only the first
process to reach the step dies (it creates ``PATH`` first; a process that finds ``PATH``
goes on): a gunicorn worker restarted with the same environment, or a retry, then succeeds.

The variable is read once, when this module is first imported; a step then costs one
function call and one comparison with None (about 30 ns on a 2-core machine, against
the tens of microseconds that storing or placing one file takes).

With ``AMA_HOLD_AT=NAME`` and ``AMA_HOLD_UNTIL=PATH``, a process that reaches the hold
point ``NAME`` waits there until ``PATH`` exists: a test damages what the step is about to
read, or kills the process while it waits, deterministically. Each arrival that waits
appends a line to ``PATH.waiting``, so the test knows how many reached the step.

Each step is one ``crash_point("NAME")`` line in the code; ama-format(5), under
ENVIRONMENT, lists them all with the state each leaves (a test keeps the two in step).
"""

from __future__ import annotations

import os
import signal
import time

_AT = os.environ.get("AMA_CRASH_AT") or None
_HOLD_AT = os.environ.get("AMA_HOLD_AT") or None


def crash_point(name: str) -> None:
    """Die by SIGKILL here when ``AMA_CRASH_AT`` is ``name`` (see the module docstring);
    otherwise return at once."""
    if name == _AT:
        _crash()


def _crash() -> None:
    once = os.environ.get("AMA_CRASH_ONCE")
    if once:
        try:
            os.close(os.open(once, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)


def hold_point(name: str) -> None:
    """Wait here while ``AMA_HOLD_AT`` is ``name`` until the file ``AMA_HOLD_UNTIL`` exists
    (see the module docstring); otherwise return at once."""
    if name != _HOLD_AT:
        return
    until = os.environ.get("AMA_HOLD_UNTIL")
    if until and not os.path.exists(until):
        # One line per arrival, so that a test knows how many reached the step.
        fd = os.open(f"{until}.waiting", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, f"{name} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
    while until and not os.path.exists(until):
        time.sleep(0.05)
