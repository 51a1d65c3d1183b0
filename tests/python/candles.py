"""Independent 1m candles from recorded trades, with exact decimals (no floats).

usage: candles.py OUT.csv CAPTURE.gz [CAPTURE.gz ...]
Reads every `@trade` message of the hftbacktest captures, buckets trades by trade time T
into minutes, and writes symbol,open_time_ms,open,high,low,close,volume,trades with eight
decimals. The last minute of the recording is left out (it may be incomplete).
"""

import csv
import gzip
import json
import sys
from decimal import Decimal

EIGHT = Decimal("0.00000001")


def trades(paths):
    for path in paths:
        with gzip.open(path, "rt") as f:
            for line in f:
                _, _, payload = line.partition(" ")
                msg = json.loads(payload)
                if isinstance(msg, dict) and msg.get("stream", "").endswith("@trade"):
                    d = msg["data"]
                    yield d["s"], d["t"], d["T"], Decimal(d["p"]), Decimal(d["q"])


def main(out, paths):
    seen = set()
    candles = {}
    for symbol, trade_id, t, price, qty in trades(paths):
        if (symbol, trade_id) in seen:
            continue
        seen.add((symbol, trade_id))
        key = (symbol, t - t % 60000)
        c = candles.get(key)
        if c is None:
            candles[key] = [price, price, price, price, qty, 1]
        else:
            c[1] = max(c[1], price)
            c[2] = min(c[2], price)
            c[3] = price
            c[4] += qty
            c[5] += 1
    last = max(k[1] for k in candles)
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["symbol", "open_time_ms", "open", "high", "low", "close", "volume", "trades"])
        for (symbol, minute), (o, h, l, c, v, n) in sorted(candles.items()):
            if minute == last:
                continue
            w.writerow([symbol, minute] + [x.quantize(EIGHT) for x in (o, h, l, c, v)] + [n])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
