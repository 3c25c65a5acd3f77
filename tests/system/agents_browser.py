#!/usr/bin/env python3
"""The status page in a real browser: headless chromium, driven by
selenium through chromedriver (Debian's chromium, chromium-driver,
python3-selenium), against a live cluster of five agents.

The page of one agent shows all five members live, with their keys; a
`set` on another agent appears on it; a killed agent turns down on it
(in the table and in the picture); all without a reload (a marker the
page set at load is still there). A screenshot is saved
(SB_SCREENSHOT, default status-page.png in the working directory): the
README's docs/status-page.png. Reported skipped (exit 77), with the
reason, where the browser cannot start. Behaviour is asserted; deadlines
only keep a broken build from hanging.

usage: agents_browser.py PATH/TO/scuttlebutt
"""
import os
import shutil
import signal
import sys

from agents import Agent, is_event
from check import check
from operate import cli, debian_module, private_rundir, ready, wait_until


def browser():
    """A headless chromium under selenium, or exit 77 saying why not."""
    try:
        webdriver = debian_module("selenium.webdriver")
        service = debian_module("selenium.webdriver.chrome.service")
    except ImportError as e:
        print("SKIPPED: selenium is not installed (python3-selenium):", e)
        sys.exit(77)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver")
        else None)
    if not chromium or not driver:
        print("SKIPPED: chromium or chromedriver is not installed "
              "(chromium, chromium-driver)")
        sys.exit(77)
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--disable-gpu", "--window-size=1280,900"]:
        opts.add_argument(a)
    try:
        return webdriver.Chrome(service=service.Service(driver), options=opts)
    except Exception as e:  # whatever keeps it from starting here
        print("SKIPPED: chromium cannot start here:", str(e).splitlines()[0])
        sys.exit(77)


def main():
    exe = sys.argv[1]
    private_rundir()
    agents = [Agent(exe, "127.0.0.1:0", extra=["--http", "127.0.0.1:0"],
                    sets=["role=seed"])]
    for i in range(1, 5):
        agents.append(Agent(exe, "127.0.0.1:0", [agents[0].addr],
                            sets=["role=worker", "zone=z%d" % (i % 2)]))
    for a in agents:
        for b in agents:
            if a is not b:
                a.wait(is_event("join", b.addr))
    web = ready(agents[0])["http"]
    print("5 agents; the page at http://%s/" % web)

    d = browser()
    try:
        d.set_script_timeout(30)
        d.get("http://%s/" % web)
        loaded_at = d.execute_script("return window.scuttlebuttPage.loadedAt")

        def row_status(addr):
            return d.execute_script(
                "const r = document.querySelector('#members tr[data-addr=\"'"
                " + arguments[0] + '\"]'); return r && r.dataset.status;",
                addr)

        def node_status(addr):
            return d.execute_script(
                "const c = document.querySelector('#graph circle[data-addr=\"'"
                " + arguments[0] + '\"]'); return c && c.dataset.status;",
                addr)

        def kv(addr, key):
            return d.execute_script(
                "const e = document.querySelector('li[data-peer=\"' + "
                "arguments[0] + '\"][data-key=\"' + arguments[1] + '\"]');"
                "return e && e.querySelector('.v').textContent;", addr, key)

        # all members shown, live, with their keys
        for a in agents:
            wait_until(lambda: row_status(a.addr) == "live" and
                       node_status(a.addr) == "live", a.addr + " live")
            wait_until(lambda: kv(a.addr, "role"), a.addr + " keys")
        print("all 5 members live on the page, with their keys")

        # a set on another agent appears (once the page follows the events)
        wait_until(lambda: d.execute_script(
            "return document.getElementById('feed-state').className")
            == "open", "the event stream open")
        r = cli(exe, "set", "--control", ready(agents[2])["control"],
                "color", "green")
        check(r.returncode == 0, r)
        wait_until(lambda: kv(agents[2].addr, "color") == "green",
                   "the set on the page")
        wait_until(lambda: "color = green" in d.find_element(
            "id", "events").text, "the update in the event feed")
        print("a set on another agent appears on the page")

        # a killed agent turns down
        victim = agents[4]
        victim.proc.kill()
        victim.proc.wait()
        agents[0].wait(is_event("leave", victim.addr, status="down"))
        wait_until(lambda: row_status(victim.addr) == "down" and
                   node_status(victim.addr) == "down", "down on the page")
        print("a killed agent turns down on the page")

        check(d.execute_script("return window.scuttlebuttPage.loadedAt")
              == loaded_at, "the page was reloaded")
        print("no reload")
        shot = os.environ.get("SB_SCREENSHOT", "status-page.png")
        check(d.save_screenshot(shot), shot)
        print("screenshot:", os.path.abspath(shot))
    finally:
        d.quit()
    for a in agents[:4]:
        a.proc.send_signal(signal.SIGTERM)
    for a in agents[:4]:
        check(a.proc.wait(timeout=60) == 0)


if __name__ == "__main__":
    main()
