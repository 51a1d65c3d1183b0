"""Reference indicators from TA-Lib for a kline CSV (the test's independent peer).

Usage: talib_reference.py KLINES.csv  -> CSV on stdout:
open_time_ms,rsi14,atr14,ema12,ema26,sma20_volume  (empty where TA-Lib has no value yet)
"""
import csv
import math
import sys

import numpy as np
import talib


def read(path):
    rows = []
    with open(path, newline="") as f:
        for fields in csv.reader(f):
            if not fields or not fields[0].strip().lstrip("-").isdigit():
                continue  # header or blank line
            rows.append([int(fields[0])] + [float(x) for x in fields[1:6]])
    return rows


def main():
    rows = read(sys.argv[1])
    cols = np.array([r[1:] for r in rows], dtype=np.float64).T
    _open, high, low, close, volume = cols
    series = [
        talib.RSI(close, timeperiod=14),
        talib.ATR(high, low, close, timeperiod=14),
        talib.EMA(close, timeperiod=12),
        talib.EMA(close, timeperiod=26),
        talib.SMA(volume, timeperiod=20),
    ]
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["open_time_ms", "rsi14", "atr14", "ema12", "ema26", "sma20_volume"])
    for i, row in enumerate(rows):
        out.writerow([row[0]] + ["" if math.isnan(s[i]) else repr(float(s[i])) for s in series])


if __name__ == "__main__":
    main()
