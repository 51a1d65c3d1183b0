"""Independent peer: a Python `websockets` server that sends a capture's envelopes to the
first client — every fifth message fragmented into three frames — pings it every 50 ms
(closing it if a pong does not come back), then closes with 1000 "done".

usage: ws_server.py CAPTURE  (prints "port N" on its first line)
"""

import asyncio
import gzip
import sys

from websockets.asyncio.server import serve


def envelopes(path):
    raw = open(path, "rb").read()
    text = gzip.decompress(raw).decode() if raw[:2] == b"\x1f\x8b" else raw.decode()
    return [line[line.find('{"stream"'):] for line in text.splitlines() if '{"stream"' in line]


async def main(path):
    messages = envelopes(path)
    done = asyncio.Event()

    async def handler(ws):
        for i, message in enumerate(messages):
            if i % 5 == 0 and len(message) > 3:
                third = len(message) // 3
                await ws.send(iter([message[:third], message[third : 2 * third], message[2 * third :]]))
            else:
                await ws.send(message)
            if i % 200 == 0:
                await asyncio.sleep(0.06)  # let keepalive pings interleave
        await ws.close(1000, "done")
        done.set()

    async with serve(handler, "127.0.0.1", 0, ping_interval=0.05, ping_timeout=2, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"port {port}", flush=True)
        await asyncio.wait_for(done.wait(), timeout=120)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
