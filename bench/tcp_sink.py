#!/usr/bin/env python3
"""bench/tcp_sink.py - receive one TCP stream and time it.

    tcp_sink.py ADDRESS PORT BYTES READY_FILE

Listens on ADDRESS:PORT, writes READY_FILE once it does, accepts one
connection and reads until BYTES bytes have come (or the sender closes).
Prints "MICROSECONDS BYTES": the time from the first byte to the last,
with a monotonic clock (the sender's start-up is not in it)."""
import socket
import sys
import time


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    want = int(sys.argv[3])
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((sys.argv[1], int(sys.argv[2])))
    srv.listen(1)
    srv.settimeout(120)
    open(sys.argv[4], "w").close()
    conn, _ = srv.accept()
    conn.settimeout(120)
    got, t0 = 0, None
    while got < want:
        data = conn.recv(1 << 20)
        if not data:
            break
        if t0 is None:
            t0 = time.monotonic()
        got += len(data)
    t1 = time.monotonic()
    print("%d %d" % ((t1 - (t0 or t1)) * 1e6, got))


if __name__ == "__main__":
    main()
