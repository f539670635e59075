#!/usr/bin/env python3
"""The peer of issue 7's benchmark: kazoo's Queue or LockingQueue recipe, one producer process
and one consumer process, items per second.

    kazoo_queue.py --zk HOST:PORT --recipe queue|locking --items N

The driver (this script without --role) makes a queue path of its own, starts the producer and
the consumer as two more processes of this script, waits until both are connected, tells both
to go at once, and prints one line:

    peer recipe=queue items=N seconds=S items_per_s=X producer_items_per_s=Y

seconds runs from "go" to the consumer taking the last item (time.monotonic is system-wide on
Linux, so the processes' clocks agree). The producer puts items as fast as the recipe lets it;
the consumer takes them as they come: kazoo's Queue.get() does not block, so an empty queue is
waited on with a children watch (no polling); LockingQueue.get() blocks by itself, and every
item is consume()d. Needs python3-kazoo (Debian).
"""

import argparse
import ctypes
import logging
import os
import subprocess
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.recipe.queue import LockingQueue, Queue

ITEM = b"tesora"
TIMEOUT = 300.0


def make_queue(client, recipe, path):
    return Queue(client, path) if recipe == "queue" else LockingQueue(client, path)


def connect(zk):
    client = KazooClient(hosts=zk, timeout=10.0)
    client.start(timeout=30)
    return client


def await_go():
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit("no go from the driver")


def produce(args):
    client = connect(args.zk)
    queue = make_queue(client, args.recipe, args.path)
    queue.put(ITEM)  # creates the queue's nodes; the consumer skips this first item
    await_go()
    start = time.monotonic()
    for _ in range(args.items):
        queue.put(ITEM)
    print(f"produced {args.items} {time.monotonic() - start:.6f}", flush=True)
    client.stop()


def consume(args):
    client = connect(args.zk)
    queue = make_queue(client, args.recipe, args.path)
    take(client, queue, args, 1)  # the producer's setup item
    await_go()
    take(client, queue, args, args.items)
    print(f"consumed {args.items} {time.monotonic():.6f}", flush=True)
    client.stop()


def take(client, queue, args, n):
    deadline = time.monotonic() + TIMEOUT
    got = 0
    while got < n:
        if time.monotonic() > deadline:
            sys.exit(f"consumer: only {got} of {n} items within {TIMEOUT}s")
        if args.recipe == "locking":
            if queue.get(timeout=1.0) is not None:
                queue.consume()
                got += 1
            continue
        if queue.get() is not None:
            got += 1
            continue
        changed = threading.Event()
        client.get_children(args.path, watch=lambda _event: changed.set())
        if queue.get() is not None:
            got += 1
        else:
            changed.wait(1.0)


def drive(args):
    client = connect(args.zk)
    path = f"/zk-coffee-bench/kazoo-{args.recipe}-{os.getpid()}"
    client.ensure_path(path)
    me = [sys.executable, os.path.abspath(__file__), "--zk", args.zk, "--recipe", args.recipe,
          "--items", str(args.items), "--path", path]
    procs = {}
    try:
        for role in ("consumer", "producer"):
            procs[role] = subprocess.Popen(me + ["--role", role], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, text=True)
        for role, proc in procs.items():
            if proc.stdout.readline().strip() != "ready":
                sys.exit(f"the {role} did not get ready")
        start = time.monotonic()
        for proc in procs.values():
            proc.stdin.write("go\n")
            proc.stdin.flush()
        produced = procs["producer"].stdout.readline().split()
        consumed = procs["consumer"].stdout.readline().split()
        for role, proc in procs.items():
            if proc.wait(timeout=TIMEOUT) != 0:
                sys.exit(f"the {role} failed")
        if len(produced) != 3 or len(consumed) != 3:
            sys.exit("the producer or the consumer did not report")
        seconds = float(consumed[2]) - start
        print(f"peer recipe={args.recipe} items={args.items} seconds={seconds:.3f} "
              f"items_per_s={args.items / seconds:.1f} "
              f"producer_items_per_s={args.items / float(produced[2]):.1f}", flush=True)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        client.delete(path, recursive=True)
        client.stop()


def die_with_parent():
    """Asks Linux to SIGKILL this process when its parent (the driver) dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zk", required=True, help="HOST:PORT")
    parser.add_argument("--recipe", choices=("queue", "locking"), default="queue")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--role", choices=("producer", "consumer"))
    parser.add_argument("--path")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.role:
        die_with_parent()
    if args.role == "producer":
        produce(args)
    elif args.role == "consumer":
        consume(args)
    else:
        drive(args)


if __name__ == "__main__":
    main()
