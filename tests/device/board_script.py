# The device scenarios, run ON a board (tests/device/test_real_board.py sends this file with
# `mpremote run`) or on the virtual board (tests/device/virtual_runner.py: the unix port with the
# machine shim and a chip model): bring up the board file's chip and the stack (tcpip.board), answer
# ping for a while, connect to the host's echo server and exchange data, connect to a closed port,
# then serve HTTP/1.0 to the host's clients (listen/accept) for a few requests.
# One line per step on stdout: MARK + JSON ({"step": ...}). Needs only tcpip on the board (deployed
# with `python -m host_tools deploy`); the board file comes in as text (BOARD_SRC) so the test runs
# the repository's file. The test puts `CONFIG = {...}` and `BOARD_SRC = "..."` in front of this
# text and `STACK = main(CONFIG, board_from_source(BOARD_SRC))` after it (devicecase.board_program).
# CONFIG: addr (None: DHCP), gateway, host (the echo server's IPv4), echo_port, refused_port,
# payload (text), serve_s (how long to answer ping at most), pings (stop serving once this many
# echo replies went out), timeout_s (per connect and exchange), http_port, http_requests and
# http_size (the server scenario: how many requests, each answered with http_size bytes).
import gc
import json
import time

MARK = "TCPIP-DEVICE "


def report(msg):
    print(MARK + json.dumps(msg))


def board_from_source(src):
    """A board module from the text of a boards/*.py file."""
    g = {}
    exec(src, g)

    class Board:
        pass

    b = Board()
    for k in g:
        if not k.startswith("__"):
            setattr(b, k, g[k])
    return b


def exchange(tsocket, errors, cfg):
    s = tsocket.socket()
    s.settimeout(cfg["timeout_s"])
    out = {"step": "echo", "result": "connected", "received": ""}
    got = bytearray()
    try:
        s.connect((cfg["host"], cfg["echo_port"]))
        out["local"] = "%s:%d" % s.getsockname()
        s.sendall(cfg["payload"].encode())
        for _ in range(1000):
            chunk = s.recv(512)
            if not chunk:
                break
            got.extend(chunk)
    except OSError as exc:
        out["result"] = errors.name(errors.errno_of(exc))
    try:
        s.close()
    except OSError:
        pass
    out["received"] = bytes(got).decode()
    return out


def refused(tsocket, errors, cfg):
    s = tsocket.socket()
    s.settimeout(cfg["timeout_s"])
    t0 = time.ticks_ms()
    try:
        s.connect((cfg["host"], cfg["refused_port"]))
        result = "connected"
    except OSError as exc:
        result = errors.name(errors.errno_of(exc))
    try:
        s.close()
    except OSError:
        pass
    return {"step": "refused", "result": result, "ms": time.ticks_diff(time.ticks_ms(), t0)}


def http_serve(tsocket, errors, cfg):
    """listen on http_port, answer http_requests GETs (one at a time) with http_size bytes of
    (i * 7 + (i >> 8)) & 0xFF, report them."""
    out = {"step": "http", "served": 0, "requests": []}
    s = tsocket.socket()
    try:
        s.setsockopt(tsocket.SOL_SOCKET, tsocket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", cfg["http_port"]))
        s.listen(2)
        s.settimeout(cfg["timeout_s"])
        n = cfg["http_size"]
        body = bytearray(n)
        for i in range(n):
            body[i] = (i * 7 + (i >> 8)) & 0xFF
        report({"step": "listening", "port": cfg["http_port"]})
        for _ in range(cfg["http_requests"]):
            c, addr = s.accept()
            c.settimeout(cfg["timeout_s"])
            req = b""
            while b"\r\n\r\n" not in req and len(req) < 2048:
                chunk = c.recv(256)
                if not chunk:
                    break
                req += chunk
            c.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
            c.write(body)
            c.close()
            out["served"] += 1
            out["requests"].append(req.split(b"\r\n")[0].decode())
    except OSError as exc:
        out["error"] = errors.name(errors.errno_of(exc))
    try:
        s.close()
    except OSError:
        pass
    return out


def main(cfg, board, driver=None):
    """The scenarios in order; returns the stack (None when bring-up failed)."""
    from tcpip import errors
    from tcpip import socket as tsocket
    from tcpip.board import bring_up
    from tcpip.wire import ipv4

    own = getattr(board, "DRIVER", None)  # a board file naming its own driver ("module:Class")
    if driver is None and own:
        modname, _, cls = own.partition(":")
        driver = getattr(__import__(modname, None, None, [cls]), cls)
    t0 = time.ticks_ms()
    try:
        stack = bring_up(board, dhcp=cfg.get("addr") is None, addr=cfg.get("addr"),
                         gateway=cfg.get("gateway"), driver=driver,
                         log=lambda text: report({"step": "log", "text": text}))
    except OSError as exc:
        report({"step": "error", "where": "bring_up", "error": str(exc)})
        return None
    r = stack.route
    report({"step": "up", "addr": "%s/%d" % (ipv4.ntoa(r.addr), r.prefix_len),
            "ip": ipv4.ntoa(r.addr), "mac": ":".join("%02x" % b for b in stack.mac),
            "board": getattr(board, "BOARD", None), "chip": board.CHIP,
            "ms": time.ticks_diff(time.ticks_ms(), t0)})
    c = stack.counters
    report({"step": "serving", "seconds": cfg["serve_s"]})
    stack.run_until(lambda: c.icmp_echo_reply_sent >= cfg["pings"], int(cfg["serve_s"] * 1000))
    report({"step": "served", "echo_replies": c.icmp_echo_reply_sent})
    report(exchange(tsocket, errors, cfg))
    report(refused(tsocket, errors, cfg))
    if cfg.get("http_requests"):
        report(http_serve(tsocket, errors, cfg))
    gc.collect()
    nic = getattr(stack.device, "counters", None)
    report({"step": "done", "counters": c.nonzero(), "heap_free": gc.mem_free(),
            "link_up": stack.device.link_up() if hasattr(stack.device, "link_up") else None,
            "nic": nic if isinstance(nic, dict) else None})
    return stack
