#!/usr/bin/env python3
"""The page's figures (issue 14), measured in a real browser: Debian's chromium, headless,
over WebDriver (python3-selenium), against real processes.

    page_bench.py --zk HOST:PORT --bin-dir DIR --logs DIR [--baristas 100] [--updates 30]

It makes a shop of its own (`shop-init --shop NAME`), puts B real `barista` processes on
shift in it, starts `shop-manager --shop NAME --listen 127.0.0.1:PORT`, waits until the
manager's /api/shops shows all B on shift, and opens the page. Then:

- first load: the bytes the page and its assets moved over the network (the navigation's and
  every resource's transferSize, headers included), read from the browser's performance
  entries once every barista is on the page;
- one update: the page's handler of the stream's `shops` messages is wrapped so that every
  real message is timed from its arrival to the page applied and laid out (a forced layout,
  getBoundingClientRect, after the page's own handler). A raw client (kazoo) places one order
  at a time into the buckets in turn; each order's arrival and service reach the page as
  `shops` messages, each a full document of B baristas. The figure is the median (and p99,
  max) of those messages' times.

It prints one line:

    page baristas=B first_load_bytes=N updates=K update_p50_ms=X update_p99_ms=Y update_max_ms=Z

and stops every process it started and removes its shop, also when it fails. Needs
python3-selenium, python3-kazoo, chromium and chromium-driver (Debian).
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from kazoo.client import KazooClient
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DEADLINE = 120.0

# Wraps the page's handler of `shops` messages: each real message timed to applied + laid out.
WRAP = """
const p = window.zkCoffeePage;
const inner = p.handlers.shops;
window.benchTimes = [];
p.handlers.shops = (message) => {
  const t0 = performance.now();
  inner(message);
  document.body.getBoundingClientRect();
  window.benchTimes.push(performance.now() - t0);
};
"""

FIRST_LOAD_BYTES = """
const nav = performance.getEntriesByType('navigation')[0];
return performance.getEntriesByType('resource').reduce((n, e) => n + e.transferSize, nav.transferSize);
"""

ROWS = "return document.querySelectorAll('#baristas tbody tr').length"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(what, cond, timeout=DEADLINE, every=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            sys.exit(f"page bench: timed out waiting for {what}")
        time.sleep(every)


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Processes:
    """Every process this script started, stopped on the way out."""

    def __init__(self, logs):
        self.logs = logs
        self.procs = []

    def start(self, name, argv):
        log = open(os.path.join(self.logs, f"page-{name}.log"), "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def api_on_shift(address, shop):
    try:
        with urllib.request.urlopen(f"http://{address}/api/shops", timeout=5) as answer:
            doc = json.load(answer)
    except OSError:
        return 0
    return len(doc.get("shops", {}).get(shop, {}).get("on_shift", []))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zk", required=True)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--logs", required=True)
    parser.add_argument("--baristas", type=int, default=100)
    parser.add_argument("--updates", type=int, default=30)
    args = parser.parse_args()

    shop = f"pagebench{os.getpid()}"
    bin_dir = args.bin_dir
    procs = Processes(args.logs)
    zk = KazooClient(hosts=args.zk, timeout=10.0)
    zk.start(timeout=30)
    browser = None
    try:
        subprocess.run([f"{bin_dir}/shop-init", "--zk", args.zk, "--shop", shop], check=True, capture_output=True)
        names = [f"b{i:03}" for i in range(args.baristas)]
        for name in names:
            # 300 ms a coffee: an order's arrival and its service are two messages.
            procs.start(name, [f"{bin_dir}/barista", "--zk", args.zk, "--shop", shop, "--name", name,
                               "--brew-time", "300ms"])
        address = f"127.0.0.1:{free_port()}"
        procs.start("manager", [f"{bin_dir}/shop-manager", "--zk", args.zk, "--shop", shop, "--listen", address])
        wait(f"{args.baristas} baristas on shift in /api/shops", lambda: api_on_shift(address, shop) == args.baristas)

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1024"):
            options.add_argument(flag)
        browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        browser.set_script_timeout(30)
        browser.get(f"http://{address}/")
        wait("every barista on the page", lambda: browser.execute_script(ROWS) == args.baristas)
        first_load = int(browser.execute_script(FIRST_LOAD_BYTES))

        browser.execute_script(WRAP)
        for i in range(args.updates):
            bucket = f"/shops/{shop}/orders/{names[i % len(names)]}"
            before = browser.execute_script("return window.benchTimes.length")
            path = zk.create(f"{bucket}/coffee", b"jacob", sequence=True)
            wait(f"order {path} served", lambda: zk.exists(path) is None, every=0.01)
            wait("the page to apply the order's messages",
                 lambda: browser.execute_script("return window.benchTimes.length") >= before + 1, every=0.01)
        times = sorted(browser.execute_script("return window.benchTimes"))
        if not times:
            sys.exit("page bench: no update was timed")
        print(f"page baristas={args.baristas} first_load_bytes={first_load} updates={len(times)} "
              f"update_p50_ms={percentile(times, 0.5):.2f} update_p99_ms={percentile(times, 0.99):.2f} "
              f"update_max_ms={times[-1]:.2f}", flush=True)
    finally:
        if browser is not None:
            browser.quit()
        procs.stop()
        zk.delete(f"/shops/{shop}", recursive=True)
        zk.stop()


if __name__ == "__main__":
    main()
