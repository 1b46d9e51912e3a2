#!/usr/bin/env python3
"""bench/echo_latency.py - keystroke echo latency of a terminal session.

    echo_latency.py N COMMAND...

Runs COMMAND on a new pseudo-terminal (as a user's terminal emulator
would), waits until it echoes, then N times: writes one byte to the
terminal's master and times, with a monotonic clock, until that byte comes
back.  COMMAND should be `cat` on a terminal in cooked mode, so that the
echo comes from the line discipline of the terminal the process reads
(for `vc container exec -it ... /bin/cat`, the container's pty: the byte
goes vc -> agent -> pty and back).  Every 64 bytes a carriage return ends
the line (cat then prints it, and that output is drained untimed).

Prints "MEDIAN_US MIN_US P90_US N" on stdout."""
import os
import pty
import select
import signal
import sys
import time


def read_until(fd, want, timeout):
    """Read from fd until want is in what was read; return what was read."""
    got = b""
    end = time.monotonic() + timeout
    while want not in got:
        left = end - time.monotonic()
        if left <= 0:
            raise SystemExit("echo_latency: no %r within %ss (got %r)" % (want, timeout, got[-200:]))
        r, _, _ = select.select([fd], [], [], left)
        if r:
            data = os.read(fd, 4096)
            if not data:
                raise SystemExit("echo_latency: the session ended (got %r)" % got[-200:])
            got += data
    return got


def drain(fd, quiet):
    """Read what comes until nothing has come for quiet seconds."""
    while select.select([fd], [], [], quiet)[0]:
        if not os.read(fd, 65536):
            return


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    n = int(sys.argv[1])
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(sys.argv[2], sys.argv[2:])
    try:
        # Ready once a probe comes back (vc has connected, cat reads).
        deadline = time.monotonic() + 60
        while True:
            os.write(fd, b"!")
            try:
                read_until(fd, b"!", 1)
                break
            except SystemExit:
                if time.monotonic() > deadline:
                    raise
        os.write(fd, b"\r")
        drain(fd, 0.2)
        samples = []
        for i in range(n):
            ch = bytes([ord("a") + i % 26])
            t0 = time.monotonic_ns()
            os.write(fd, ch)
            read_until(fd, ch, 10)
            samples.append((time.monotonic_ns() - t0) / 1000)
            if i % 64 == 63:
                os.write(fd, b"\r")
                drain(fd, 0.05)
        samples.sort()
        print("%.0f %.0f %.0f %d" % (samples[len(samples) // 2], samples[0],
                                     samples[len(samples) * 9 // 10], len(samples)))
    finally:
        os.write(fd, b"\x04")  # EOF: cat ends, and so does the session
        end = time.monotonic() + 10
        while time.monotonic() < end:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            drain(fd, 0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
