#!/usr/bin/env python3
"""A stand-in for the service manager's end of sd_notify(3), for systemd_test.sh.

Usage: notify_listen.py SOCKET LOG [PROBE]

Binds an AF_UNIX datagram socket at SOCKET (what $NOTIFY_SOCKET names) and appends every
message it receives to LOG as one line: the receive time (seconds, monotonic clock), a space,
and the message's newline-separated assignments joined by " | ".
With PROBE (a shell command), when a message carries READY=1 it runs PROBE at once and
appends its output (lines "PROBE: ...") and "PROBE rc=N": the state of the service at the moment it said it was ready.
Runs until killed.
"""
import os
import socket
import subprocess
import sys
import time


def main() -> None:
    path, log = sys.argv[1], sys.argv[2]
    probe = sys.argv[3] if len(sys.argv) > 3 else None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)  # a service running as another user writes to it too
    with open(log, "a", buffering=1) as out:
        out.write("LISTENING\n")
        while True:
            msg = s.recv(4096).decode(errors="replace")
            out.write(f"{time.monotonic():.3f} " + " | ".join(msg.split("\n")) + "\n")
            if probe and "READY=1" in msg.split("\n"):
                r = subprocess.run(["sh", "-c", probe], check=False, capture_output=True, text=True)
                for line in (r.stdout + r.stderr).splitlines():
                    out.write(f"PROBE: {line}\n")
                out.write(f"PROBE rc={r.returncode}\n")


if __name__ == "__main__":
    main()
