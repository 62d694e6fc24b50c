#!/usr/bin/env python3
"""A WebSocket client made of Python's websockets library alone (Debian's
python3-websockets, 10.x: the asyncio API), for wstap's integration tests.

It connects with the library's own keep-alive (ping_interval), sends
--messages texts and reads their echoes, stays open for --hold seconds
(the library pings meanwhile), then closes with 1000 "bye". It prints one
JSON line: the library version, the echoes read, and the close code and
reason the library reports (1006 when the connection ended without a close
frame, RFC 6455 section 7.1.5).

    wsclient.py --url ws://127.0.0.1:8080/chat --ping-interval 0.7 --hold 5
"""
import argparse
import asyncio
import json
import time
import ssl

import websockets


async def session(args):
    ctx = None
    if args.url.startswith("wss:"):
        ctx = ssl.create_default_context(cafile=args.cafile)
    result = {"version": websockets.__version__, "echoes": 0}
    ws = await websockets.connect(args.url, ping_interval=args.ping_interval, ping_timeout=args.ping_timeout,
                                  ssl=ctx, open_timeout=10)
    try:
        for i in range(args.messages):
            msg = "message %d" % i
            await ws.send(msg)
            got = await ws.recv()
            if got != msg:
                raise SystemExit("echo %r, want %r" % (got, msg))
            result["echoes"] += 1
        try:
            # Waiting for a message the upstream never sends; the library's
            # keep-alive task pings meanwhile. Cancelling recv() is safe.
            await asyncio.wait_for(ws.recv(), args.hold)
            result["unexpected_message"] = True
        except asyncio.TimeoutError:
            pass
        closing = time.monotonic()
        await ws.close(1000, "bye")
        result["close_seconds"] = round(time.monotonic() - closing, 3)
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    result["close_code"] = ws.close_code
    result["close_reason"] = ws.close_reason
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--cafile", help="CA certificate (PEM) to trust for wss://")
    p.add_argument("--ping-interval", type=float, default=20.0, help="seconds, as websockets.connect takes it")
    p.add_argument("--ping-timeout", type=float, default=20.0)
    p.add_argument("--messages", type=int, default=3)
    p.add_argument("--hold", type=float, default=5.0, help="seconds to stay open after the echoes")
    args = p.parse_args()
    print(json.dumps(asyncio.run(session(args))), flush=True)


if __name__ == "__main__":
    main()
