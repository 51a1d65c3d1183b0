"""Runs exchange-sim's synthetic market and tails it with a stock WebSocket client,
printing one progress line per second: messages/s by kind, last prices, simulated time.

usage: tail.py EXCHANGE_SIM_BINARY DURATION SUMMARY_FILE
"""

import asyncio
import json
import subprocess
import sys
import time

import websockets

STREAMS = [f"{s}@{c}" for s in ("btcusdt", "ethusdt", "solusdt") for c in ("aggTrade", "kline_1m", "bookTicker", "depth@100ms", "markPrice@1s")]


async def tail(binary, duration, summary):
    sim = subprocess.Popen(
        [binary, "--synthetic", "--symbols", "20", "--speed", "60", "--port", "0", "--for", duration, "--summary", summary],
        stdout=subprocess.PIPE,
        text=True,
    )
    ws_url, http_url = sim.stdout.readline().split()[1:3]
    print(f"exchange-sim up: {ws_url} (WebSocket) {http_url} (REST); tailing {len(STREAMS)} streams for {duration}")
    counts, last_price, sim_ms = {}, {}, 0
    next_report = time.monotonic() + 1
    try:
        async with websockets.connect(f"{ws_url}/stream?streams={'/'.join(STREAMS)}") as ws:
            async for raw in ws:
                data = json.loads(raw)["data"]
                counts[data["e"]] = counts.get(data["e"], 0) + 1
                sim_ms = max(sim_ms, data.get("E", 0))
                if data["e"] == "aggTrade":
                    last_price[data["s"]] = data["p"]
                if time.monotonic() >= next_report:
                    stamp = time.strftime("%H:%M:%S", time.gmtime(sim_ms / 1000))
                    kinds = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
                    prices = " ".join(f"{s}={p}" for s, p in sorted(last_price.items()))
                    print(f"sim {stamp}  msgs/s: {kinds}  last: {prices}", flush=True)
                    counts.clear()
                    next_report += 1
    except websockets.ConnectionClosed as closed:
        print(f"exchange-sim closed the stream: {closed.rcvd.reason if closed.rcvd else 'no reason'}")
    sim.wait()
    print(f"summary written to {summary}")


if __name__ == "__main__":
    asyncio.run(tail(sys.argv[1], sys.argv[2], sys.argv[3]))
