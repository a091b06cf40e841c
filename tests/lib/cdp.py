"""A small Chrome DevTools Protocol client for the browser tests
(tests/browser/): starts Debian's headless chromium with its own profile in
a temporary directory, attaches to its page over the DevTools websocket
(Debian's python3-websocket), and drives it as a person would: navigate,
type, press keys, choose a file, read the DOM, take screenshots. JavaScript
exceptions and console errors are collected so a test can assert there were
none.

    with Browser(width=1280, height=900) as b:
        b.navigate("http://127.0.0.1:8080/ui/")
        b.wait("document.querySelector('h1')")
        b.screenshot("/tmp/x.png")

Browser.unavailable() says why chromium cannot be used here (None when it
can); tests skip with exit 77 on that, except when CI=true.
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium():
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(Exception):
    pass


class Browser:
    def __init__(self, width=1280, height=900, timeout=30):
        self.width, self.height, self.timeout = width, height, timeout
        self.proc = None
        self.ws = None
        self.profile = None
        self.next_id = 0
        self.exceptions = []   # Runtime.exceptionThrown details
        self.console = []      # (level, source, text) of console/log entries

    @staticmethod
    def unavailable():
        """None when chromium and the websocket module are usable, else why not."""
        try:
            import websocket  # noqa: F401
        except ImportError:
            return "python3-websocket is not installed (scripts/deps.sh test installs it)"
        if not find_chromium():
            return "chromium is not installed (scripts/deps.sh test installs it)"
        return None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        import websocket
        exe = find_chromium()
        if not exe:
            raise BrowserError("chromium not found")
        self.profile = tempfile.mkdtemp(prefix="itemvec-chromium-")
        args = [exe, "--headless=new", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--disable-component-update",
                "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                "--remote-allow-origins=*", "--user-data-dir=" + self.profile,
                "--window-size=%d,%d" % (self.width, self.height), "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # chromium refuses to run as root with its sandbox
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + self.timeout
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if self.proc.poll() is not None or time.time() > deadline:
                raise BrowserError("chromium did not start: %s" % self.log_tail())
            time.sleep(0.05)
        time.sleep(0.05)
        with open(port_file) as f:
            port = int(f.readline().strip())
        page = None
        while page is None:
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10) as r:
                targets = json.load(r)
            page = next((t for t in targets if t.get("type") == "page"), None)
            if page is None:
                if time.time() > deadline:
                    raise BrowserError("chromium has no page target")
                time.sleep(0.1)
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=self.timeout,
                                              suppress_origin=True)
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Log.enable")
        self.viewport(self.width, self.height)

    def log_tail(self):
        try:
            with open(os.path.join(self.profile, "chromium.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")[-2000:]
        except OSError:
            return ""

    def close(self):
        if self.ws:
            try:
                self.send("Browser.close", _timeout=5)
            except Exception:
                pass
            try:
                self.ws.close()
            except Exception:
                pass
            self.ws = None
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None

    # ---- protocol ----

    def _event(self, msg):
        method = msg.get("method")
        p = msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            ex = d.get("exception", {})
            self.exceptions.append(ex.get("description") or d.get("text"))
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.console.append(("error", "console", text))
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            self.console.append((e.get("level"), e.get("source"), e.get("text")))

    def send(self, method, _timeout=None, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        deadline = time.time() + (_timeout or self.timeout)
        while True:
            if time.time() > deadline:
                raise BrowserError("no answer to %s" % method)
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise BrowserError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self._event(msg)

    def pump(self, seconds):
        """Reads events for a while (console, exceptions) without a command."""
        end = time.time() + seconds
        self.ws.settimeout(0.1)
        try:
            while time.time() < end:
                try:
                    self._event(json.loads(self.ws.recv()))
                except Exception:
                    pass
        finally:
            self.ws.settimeout(self.timeout)

    # ---- what a person does ----

    def viewport(self, width, height, mobile=False, scale=1):
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=scale, mobile=mobile)

    def navigate(self, url):
        self.send("Page.navigate", url=url)

    def eval(self, expr, await_promise=True):
        r = self.send("Runtime.evaluate", expression=expr, returnByValue=True,
                      awaitPromise=await_promise, userGesture=True)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise BrowserError("evaluate %r: %s" % (expr[:80], d.get("exception", {}).get(
                "description", d.get("text"))))
        return r.get("result", {}).get("value")

    def wait(self, expr, timeout=20, what=None):
        """Polls the JS expression until it is truthy; returns its value."""
        deadline = time.time() + timeout
        last = None
        # a DOM node has no JSON value: count it as true
        wrapped = "(function(){var v = (%s); return v instanceof Node ? true : v;})()" % expr
        while time.time() < deadline:
            try:
                last = self.eval(wrapped)
            except BrowserError as e:
                last = e
            if last and not isinstance(last, BrowserError):
                return last
            self.pump(0.1)
        raise AssertionError("timed out waiting for %s (last: %r)" % (what or expr, last))

    def key(self, key, code=None, text=None, shift=False):
        names = {"Tab": (9, "Tab"), "Enter": (13, "Enter"), "Escape": (27, "Escape"),
                 " ": (32, "Space")}
        vk, kcode = names.get(key, (0, code or key))
        base = {"key": key, "code": kcode, "windowsVirtualKeyCode": vk,
                "nativeVirtualKeyCode": vk, "modifiers": 8 if shift else 0}
        down = dict(base, type="keyDown")
        if text is None and key == "Enter":
            text = "\r"
        if text:
            down["text"] = text
        self.send("Input.dispatchKeyEvent", **down)
        self.send("Input.dispatchKeyEvent", **dict(base, type="keyUp"))

    def type(self, text):
        self.send("Input.insertText", text=text)

    def focus(self, selector):
        self.eval("document.querySelector(%s).focus()" % json.dumps(selector))

    def click(self, selector):
        """Clicks the element's centre with the mouse, once it stopped moving
        (content loading above it shifts it)."""
        expr = """(function(){var e=document.querySelector(%s);
            e.scrollIntoView({block:'center'}); var r=e.getBoundingClientRect();
            return [r.left + r.width/2, r.top + r.height/2];})()""" % json.dumps(selector)
        box, deadline = self.eval(expr), time.time() + self.timeout
        while time.time() < deadline:
            self.pump(0.15)
            again = self.eval(expr)
            if again == box:
                break
            box = again
        for t in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=t, x=box[0], y=box[1], button="left",
                      clickCount=1)

    def set_file(self, selector, path):
        doc = self.send("DOM.getDocument", depth=0)
        node = self.send("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector=selector)
        self.send("DOM.setFileInputFiles", files=[path], nodeId=node["nodeId"])

    def screenshot(self, path, full_page=True):
        params = {"format": "png"}
        if full_page:
            m = self.send("Page.getLayoutMetrics")
            size = m.get("cssContentSize") or m["contentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {"x": 0, "y": 0, "width": size["width"],
                              "height": min(size["height"], 6000), "scale": 1}
        data = self.send("Page.captureScreenshot", **params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path
