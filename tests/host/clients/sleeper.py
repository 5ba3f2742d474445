# Sleeps without touching a socket: `sleeper.py time S` in time.sleep, `sleeper.py asyncio S` in
# asyncio.sleep. Prints "sleeping" first and "woke" at the end. Under `python -m host_tools run`
# the stack must go on answering meanwhile (tests/host/test_run.py pings it).
import sys
import time

print("sleeping")
if sys.argv[1] == "asyncio":
    import asyncio

    async def main(seconds):
        await asyncio.sleep(seconds)

    asyncio.run(main(float(sys.argv[2])))
else:
    time.sleep(float(sys.argv[2]))
print("woke")
