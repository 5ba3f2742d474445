# The same server with MicroPython's asyncio (asyncio.start_server), nothing here knows tcpip:
# serves COUNT connections (concurrently, as they come) on PORT, then closes the server.
#     micropython async_server.py PORT COUNT SIZE
import asyncio
import sys

state = {"served": 0}


def body(size):
    b = bytearray(size)
    for i in range(size):
        b[i] = (i * 7 + (i >> 8)) & 0xFF
    return b


async def main():
    port = int(sys.argv[1])
    count = int(sys.argv[2])
    size = int(sys.argv[3])
    data = body(size)
    done = asyncio.Event()

    async def handle(reader, writer):
        line = await reader.readline()
        while True:  # the rest of the request head
            h = await reader.readline()
            if not h or h == b"\r\n":
                break
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        writer.write(data)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        state["served"] += 1
        print("served", writer.get_extra_info("peername")[0], line.strip().decode())
        if state["served"] >= count:
            done.set()

    server = await asyncio.start_server(handle, "0.0.0.0", port)
    print("listening", port)
    await asyncio.wait_for(done.wait(), 60)
    server.close()
    await server.wait_closed()


asyncio.run(main())
