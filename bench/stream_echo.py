#!/usr/bin/env python3
"""bench/stream_echo.py - send a file through an echo and read it back.

    stream_echo.py SOCKET FILE

Connects to the UNIX socket SOCKET (the raw QEMU's virtio-serial port in
vm_stdin, whose guest runs `cat` from the port back to it), writes FILE to
it from one thread while the main one reads what comes back, and prints
the number of bytes that came back once as many as FILE holds have (then
exits 0), or exits 1 when the echo ends early."""
import os
import socket
import sys
import threading


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    size = os.path.getsize(sys.argv[2])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(sys.argv[1])

    def send():
        with open(sys.argv[2], "rb") as f:
            while True:
                chunk = f.read(65536)
                if not chunk:
                    return
                sock.sendall(chunk)

    writer = threading.Thread(target=send, daemon=True)
    writer.start()
    got = 0
    while got < size:
        data = sock.recv(65536)
        if not data:
            break
        got += len(data)
    print(got)
    sys.exit(0 if got == size else 1)


if __name__ == "__main__":
    main()
