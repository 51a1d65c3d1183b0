"""Independent peer: Python's `websockets` client checks that exchange-sim replays a capture
message for message, byte-identical, in file order.

usage: replay_peer.py EXCHANGE_SIM_BINARY CAPTURE_FILE
Exits 0 and prints "N passed, 0 failed" when every message matches.
"""

import asyncio
import gzip
import subprocess
import sys

import websockets


def envelopes(path):
    raw = open(path, "rb").read()
    text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
    out = []
    for line in text.splitlines():
        at = line.find('{"stream"')
        if at >= 0:
            out.append(line[at:])
    return out


async def check(binary, capture):
    streams = subprocess.run(
        [binary, "--replay", capture, "--list-streams"], check=True, capture_output=True, text=True
    ).stdout.split()
    want = envelopes(capture)
    sim = subprocess.Popen(
        [binary, "--replay", capture, "--speed", "max", "--port", "0", "--for", "120s"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = sim.stdout.readline().split()
        assert first[0] == "listening", first
        url = f"{first[1]}/stream?streams={'/'.join(streams)}"
        failed = 0
        async with websockets.connect(url, max_size=None) as ws:
            for i, expected in enumerate(want):
                got = await ws.recv()
                if got != expected:
                    failed += 1
                    if failed <= 3:
                        print(f"message {i} differs:\n got  {got[:200]}\n want {expected[:200]}")
        print(f"{len(want) - failed} passed, {failed} failed")
        return failed == 0
    finally:
        sim.kill()
        sim.wait()


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(check(sys.argv[1], sys.argv[2])) else 1)
