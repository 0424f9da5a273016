#!/usr/bin/env python3
"""Hostile clients for Tests/HostTests/ServerAbuseTests.swift, on loopback only.

attack.py slowread PORT CONNECTIONS REQUESTS   pipeline REQUESTS scrapes per connection, never read
attack.py halfopen PORT CONNECTIONS [partial]  connect and send nothing (or half a request head)
attack.py flood PORT CONNECTIONS USER PASS     keep sending requests with these credentials
attack.py timing PORT USER PASS [USER PASS...] COUNT   COUNT rounds of sequential requests, one per
                                               pair in turn: median, min, max in ms per pair
attack.py raw PORT HEX                         send bytes, print what comes back until the server closes

Every mode but timing and raw prints "ready" once set up and holds until killed (or 60 s).
"""
import asyncio, base64, socket, statistics, sys, time

HOST = "127.0.0.1"


def request(path="/metrics", user=None, password=None):
    auth = ""
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        auth = f"Authorization: Basic {token}\r\n"
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode()


def ready():
    print("ready", flush=True)


def slowread(port, connections, requests):
    socks = []
    for _ in range(connections):
        s = socket.create_connection((HOST, port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        socks.append([s, request() * requests])
    # send for 2 s whatever the server takes: it stops reading while a response is pending
    end = time.time() + 2
    while time.time() < end and any(rest for _, rest in socks):
        for entry in socks:
            s, rest = entry
            if not rest:
                continue
            try:
                entry[1] = rest[s.send(rest[:65536]):]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                entry[1] = b""
        time.sleep(0.01)
    unsent = sum(len(rest) for _, rest in socks)
    print(f"unsent {unsent}", flush=True)
    ready()
    time.sleep(60)


def halfopen(port, connections, partial):
    socks = []
    for _ in range(connections):
        s = socket.create_connection((HOST, port))
        if partial:
            s.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        socks.append(s)
    ready()
    # report how many the server has closed, every second
    for _ in range(60):
        time.sleep(1)
        closed = 0
        for s in socks:
            s.setblocking(False)
            try:
                if s.recv(65536) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        print(f"closed {closed}", flush=True)


async def flood_one(port, user, password, stop, connected):
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            connected.append(1)
            while not stop.is_set():
                writer.write(request(user=user, password=password))
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                if b"connection: close" in head.lower():
                    break
            writer.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            await asyncio.sleep(0.01)


async def flood(port, connections, user, password):
    stop = asyncio.Event()
    connected = []
    tasks = [asyncio.create_task(flood_one(port, user, password, stop, connected)) for _ in range(connections)]
    for _ in range(200):  # every connection made, or 10 s
        if len(connected) >= connections:
            break
        await asyncio.sleep(0.05)
    ready()
    await asyncio.sleep(60)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


def timing(port, pairs, count):
    """Alternates between the credentials, so that load on the machine falls on both alike."""
    times = [[] for _ in pairs]
    statuses = set()
    for _ in range(count):
        for i, (user, password) in enumerate(pairs):
            s = socket.create_connection((HOST, port))
            start = time.perf_counter()
            s.sendall(request(user=user, password=password))
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            times[i].append((time.perf_counter() - start) * 1000)
            statuses.add(data.split(b" ")[1].decode())
            s.close()
    for t in times:
        print(f"{statistics.median(t):.3f} {min(t):.3f} {max(t):.3f}", flush=True)
    print("statuses " + " ".join(sorted(statuses)), flush=True)


def raw(port, data):
    s = socket.create_connection((HOST, port))
    s.settimeout(5)
    s.sendall(data)
    received = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                print("closed", flush=True)
                break
            received += chunk
    except socket.timeout:
        print("open", flush=True)
    sys.stdout.write(received.decode("latin-1"))


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "slowread":
        slowread(port, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "halfopen":
        halfopen(port, int(sys.argv[3]), len(sys.argv) > 4)
    elif mode == "flood":
        asyncio.run(flood(port, int(sys.argv[3]), sys.argv[4], sys.argv[5]))
    elif mode == "timing":
        args = sys.argv[3:-1]
        timing(port, list(zip(args[0::2], args[1::2])), int(sys.argv[-1]))
    elif mode == "raw":
        raw(port, bytes.fromhex(sys.argv[3]))


if __name__ == "__main__":
    main()
