"""The shipped systemd units under a real systemd (issue 12).

tests/api/test_systemd_units.py checks the unit files statically and the
daemon's sd_notify messages on a fake socket; this test boots a minimal
Debian 12 with systemd as PID 1 and checks what users rely on:

  1. `systemctl start itemvecd` reaches active only after READY=1: with
     NOTIFY_SOCKET withheld (a drop-in) the start times out although the
     daemon serves; with it, active comes after the "listening" line and
     /readyz answers at once.
  2. `systemctl reload` (ExecReload, no procps in the container) applies a
     changed token file: the new token goes 401 -> 200, the old one 200 -> 401.
  3. A hung daemon (SIGSTOP) is killed by the watchdog and restarted
     (WatchdogSec shortened to 3 s by a drop-in).
  4. ProtectSystem=strict: inside the daemon's mount namespace /etc, /usr and
     /var are read-only; its state dir is writable.
  5. DynamicUser: the state dir and database belong to the daemon's dynamic
     uid (61184-65519), mode 0600 files (UMask=0077).
  6. `systemctl stop` drains (an upload still being sent when stop begins is
     answered 2xx) and the daemon exits 0 (Result=success).
  7. The journal has the daemon's lines (listening, reload, stopping, stopped).
  8. The template itemvecd@.service runs two catalogs side by side, each
     with its own state.

The container: a `debootstrap --variant=minbase --include=systemd,dbus
bookworm` tree cached in /var/cache/itemvec-test/bookworm-systemd (made
once, ~5 min, with the mirror of /etc/apt/sources.list*; $ITEMVEC_NSPAWN_CACHE
moves it). The packages that hold the built binary's shared libraries (ldd
of $ITEMVECD, owners by dpkg -S) are installed into the cached image with apt
in a chroot, so the image follows the build's libraries. Each run boots an
overlayfs on the image (its own upper dir, so runs are independent and the
image stays clean; a copy where overlayfs cannot be mounted), installs the
build with
`DESTDIR=<copy> cmake --install $ITEMVEC_BUILD --prefix /usr`, boots it with
`systemd-nspawn --boot --register=no --keep-unit --private-network` and runs
commands inside with `nsenter -t <its PID 1> -a -r -w` (-r -w: nspawn
chroots into the tree, so entering the mount namespace alone would leave a
caller that is itself in a chroot at the namespace's original root). --private-network: the
container has only its own loopback, so all HTTP traffic (sent by this
file's Python, entered into the container's network namespace with
`nsenter -n`) stays inside it.

Needs root, debootstrap, systemd-nspawn (package systemd-container) and a
kernel that lets systemd boot in a container. Where that is missing the test
exits 77 (skipped) with the reason, except with CI=true, where it fails.
Registered only for builds without sanitizers: the units' SystemCallFilter
and MemoryDenyWriteExecute are not made for sanitizer runtimes (LSan's
ptrace), and the units are the same in every build.
"""
import fcntl
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

CI = os.environ.get("CI") == "true"
CACHE = os.environ.get("ITEMVEC_NSPAWN_CACHE", "/var/cache/itemvec-test")
IMAGE = os.path.join(CACHE, "bookworm-systemd")
STAMP = ".itemvec-test-image"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TOKEN_A = "token-a-0123456789"
TOKEN_B = "token-b-9876543210"
PORT = 8080


def give_up(msg):
    """Skip (exit 77) with the reason, or fail under CI=true."""
    if CI:
        print("FAIL: %s (CI=true: the container test must run)" % msg)
        sys.exit(1)
    print("SKIP: %s" % msg)
    sys.exit(77)


def log(msg):
    print("[nspawn %6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


T0 = time.monotonic()


def sh(cmd, check=True, timeout=600, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p


def debian_mirror():
    """The first Debian archive URI for bookworm in this machine's apt
    sources (deb822 .sources or one-line .list), else deb.debian.org."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as f:
            for stanza in f.read().split("\n\n"):
                fields = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.startswith((" ", "#")):
                        k, _, v = line.partition(":")
                        fields[k.strip()] = v.split()
                if ("bookworm" in fields.get("Suites", []) and "deb" in fields.get("Types", [])
                        and fields.get("URIs")):
                    return fields["URIs"][0]
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        try:
            with open(path) as f:
                for line in f:
                    w = line.split()
                    w = [x for x in w if not x.startswith("[")]
                    if len(w) >= 3 and w[0] == "deb" and w[2] == "bookworm":
                        return w[1]
        except OSError:
            pass
    return "http://deb.debian.org/debian"


def dpkg_owners(paths):
    """{path: package} for the paths dpkg knows (one dpkg -S call; paths
    behind alternatives or symlinks are retried by their real path)."""
    owners = {}
    p = sh(["dpkg", "-S"] + list(paths), check=False)
    for ln in p.stdout.splitlines():
        if ln.startswith("diversion") or ": " not in ln:
            continue
        pkgs, _, path = ln.partition(": ")
        owners[path] = pkgs.split(",")[0].split(":")[0].strip()
    return owners


def runtime_packages(binary):
    """Debian packages holding the shared libraries `binary` loads."""
    paths = []
    for line in sh(["ldd", binary]).stdout.splitlines():
        parts = line.split()
        path = parts[2] if len(parts) > 2 and parts[1] == "=>" else parts[0]
        if path.startswith("/"):
            paths.append(path)
    owners = dpkg_owners(paths + [os.path.realpath(x) for x in paths])
    pkgs = set()
    for path in paths:
        pkg = owners.get(path) or owners.get(os.path.realpath(path))
        if not pkg:
            raise RuntimeError("no package owns %s (needed by %s)" % (path, binary))
        pkgs.add(pkg)
    return sorted(pkgs)


def chroot_apt(root, pkgs):
    shutil.copy("/etc/resolv.conf", os.path.join(root, "etc/resolv.conf"))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", PATH=PATH)
    sh(["chroot", root, "apt-get", "update", "-qq"], env=env)
    sh(["chroot", root, "apt-get", "install", "-y", "-qq", "--no-install-recommends"] + pkgs,
       env=env)
    sh(["chroot", root, "apt-get", "clean"], env=env)
    for lst in glob.glob(os.path.join(root, "var/lib/apt/lists/*_Packages")):
        os.remove(lst)


def ensure_image(pkgs):
    """Makes the cached image if missing and installs `pkgs` into it; under
    a lock so that parallel runs share one image."""
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(IMAGE, STAMP)):
            tmp = IMAGE + ".new"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(IMAGE, ignore_errors=True)
            mirror = debian_mirror()
            log("building the image %s (debootstrap minbase bookworm from %s; once)" %
                (IMAGE, mirror))
            p = sh(["debootstrap", "--variant=minbase", "--include=systemd,dbus", "bookworm",
                    tmp, mirror], check=False, timeout=1800)
            if p.returncode != 0:
                tail = "\n".join((p.stdout + p.stderr).splitlines()[-15:])
                give_up("debootstrap failed (exit %d):\n%s" % (p.returncode, tail))
            with open(os.path.join(tmp, STAMP), "w") as f:
                f.write("debootstrap --variant=minbase --include=systemd,dbus bookworm %s\n" % mirror)
            os.rename(tmp, IMAGE)
        q = sh(["chroot", IMAGE, "dpkg-query", "-W", "-f", "${Package} ${Status}\n"]).stdout
        have = {ln.split()[0] for ln in q.splitlines() if ln.endswith("install ok installed")}
        missing = [p for p in pkgs if p not in have]
        if missing:
            log("installing into the image: %s" % " ".join(missing))
            chroot_apt(IMAGE, missing)


def clean_stale():
    """Removes what a killed earlier run (ctest timeout: SIGKILL) left: its
    container (the systemd-nspawn whose -D is the run's tree), overlay mount
    and directory. A run's directory names its pid; live runs are left."""
    for d in glob.glob("/var/tmp/itemvec-nspawn-*-*"):
        try:
            pid = int(os.path.basename(d).split("-")[2])
        except ValueError:
            continue
        if os.path.exists("/proc/%d" % pid):
            continue
        root = os.path.join(d, "root")
        for cmd in glob.glob("/proc/[0-9]*/cmdline"):
            try:
                with open(cmd, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"systemd-nspawn") and root.encode() in argv:
                os.kill(int(cmd.split("/")[2]), 9)
                time.sleep(1)
        sh(["umount", "-l", root], check=False)
        shutil.rmtree(d, ignore_errors=True)
        log("removed the leftovers of run %d: %s" % (pid, d))


class Container:
    """A booted copy of the image. Borrowed paths; owns its copy and the
    systemd-nspawn process."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="itemvec-nspawn-%d-" % os.getpid(), dir="/var/tmp")
        self.root = os.path.join(self.tmp, "root")
        self.name = "itemvec-test-%d" % os.getpid()
        self.proc = None
        self.pid1 = None
        self.mounted = False

    def populate(self, build):
        """An overlay on the image (writes go to this run's upper dir), or a
        copy where overlayfs cannot be mounted; then the build installed."""
        os.makedirs(self.root)
        upper, work = os.path.join(self.tmp, "upper"), os.path.join(self.tmp, "work")
        os.makedirs(upper)
        os.makedirs(work)
        p = sh(["mount", "-t", "overlay", "overlay", "-o",
                "lowerdir=%s,upperdir=%s,workdir=%s" % (IMAGE, upper, work), self.root],
               check=False)
        if p.returncode == 0:
            self.mounted = True
        else:
            log("overlayfs: %s; copying the image" % p.stderr.strip())
            os.rmdir(self.root)
            sh(["cp", "-a", "--reflink=auto", IMAGE, self.root])
        sh(["cmake", "--install", build, "--prefix", "/usr"],
           env=dict(os.environ, DESTDIR=self.root))

    def boot(self):
        self.console = open(os.path.join(self.tmp, "console.log"), "w")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--boot", "--register=no", "--keep-unit", "--private-network",
             "--console=read-only", "-M", self.name, "-D", self.root],
            stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.pid1 is None:
            if self.proc.poll() is not None:
                return "systemd-nspawn exited with %d" % self.proc.returncode
            self.pid1 = self.find_pid1()
            time.sleep(0.2)
        if self.pid1 is None:
            return "no PID 1 in the container after 120 s"
        while time.monotonic() < deadline:
            p = self.run(["systemctl", "is-system-running"], check=False)
            state = p.stdout.strip()
            if state in ("running", "degraded"):
                if state == "degraded":
                    log("system degraded: " + self.run(["systemctl", "--failed", "--no-legend"],
                                                      check=False).stdout.strip())
                return None
            if self.proc.poll() is not None:
                return "systemd-nspawn exited with %d" % self.proc.returncode
            time.sleep(0.5)
        return "the container's systemd did not finish booting in 120 s (%s)" % state

    def find_pid1(self):
        """The container's init: the child of systemd-nspawn that is PID 1
        in its own namespace."""
        for st in glob.glob("/proc/[0-9]*/status"):
            try:
                with open(st) as f:
                    s = f.read()
            except OSError:
                continue
            fields = dict(ln.split(":", 1) for ln in s.splitlines() if ":" in ln)
            if fields.get("PPid", "").strip() != str(self.proc.pid):
                continue
            ns = fields.get("NSpid", "").split()
            if len(ns) >= 2 and ns[-1] == "1":
                return int(st.split("/")[2])
        return None

    def run(self, cmd, check=True, timeout=120, input=None):
        """Runs cmd inside the container (all its namespaces)."""
        full = ["nsenter", "-t", str(self.pid1), "-a", "-r", "-w", "env", "-i", "PATH=" + PATH,
                "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "LANG=C.UTF-8"] + cmd
        p = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise AssertionError("in container: %s: exit %d\n%s%s\njournal:\n%s" %
                                 (" ".join(cmd), p.returncode, p.stdout, p.stderr,
                                  self.journal_tail()))
        return p

    def http_popen(self, port, method, path, token=None, body=None, trickle=0.0, ctype=None):
        """Starts an HTTP request from this file's Python inside the
        container's network namespace; the client prints one JSON line
        {"status", "body"}. With trickle > 0 it sends half the body, prints
        "sent-half", waits trickle seconds and sends the rest."""
        args = json.dumps({"port": port, "method": method, "path": path, "token": token,
                           "body": body, "trickle": trickle, "ctype": ctype})
        return subprocess.Popen(["nsenter", "-t", str(self.pid1), "-n", sys.executable, "-c",
                                 CLIENT, args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def http(self, port, method, path, token=None, body=None, ctype=None):
        p = self.http_popen(port, method, path, token, body, ctype=ctype)
        out, err = p.communicate(timeout=60)
        if p.returncode != 0:
            raise AssertionError("http client: %s" % err)
        return json.loads(out.splitlines()[-1])

    def run_chroot(self, cmd):
        """Runs cmd in the (not yet booted) tree."""
        return sh(["chroot", self.root] + cmd, env=dict(os.environ, PATH=PATH))

    def write(self, path, text, mode=0o644):
        full = os.path.join(self.root, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
        os.chmod(full, mode)

    def remove(self, path):
        full = os.path.join(self.root, path.lstrip("/"))
        if os.path.exists(full):
            os.remove(full)

    def journal_tail(self):
        full = ["nsenter", "-t", str(self.pid1), "-a", "-r", "-w", "journalctl", "--no-pager", "-n", "40",
                "-o", "short-monotonic"]
        p = subprocess.run(full, capture_output=True, text=True, timeout=60)
        return p.stdout + p.stderr

    def prop(self, unit, name):
        return self.run(["systemctl", "show", "-p", name, "--value", unit]).stdout.strip()

    def journal(self, unit):
        return self.run(["journalctl", "--no-pager", "-o", "cat", "-u", unit]).stdout

    def shutdown(self):
        if self.proc is not None and self.proc.poll() is None:
            if self.pid1:
                self.run(["systemctl", "poweroff", "--no-block"], check=False)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "console", None):
            self.console.close()
        if self.mounted:
            sh(["umount", self.root], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


# The HTTP client run inside the container's network namespace.
CLIENT = r"""
import http.client, json, sys, time
a = json.loads(sys.argv[1])
c = http.client.HTTPConnection("127.0.0.1", a["port"], timeout=30)
for i in range(50):
    try:
        c.connect()
        break
    except OSError:
        if i == 49: raise
        time.sleep(0.1)
body = a["body"].encode() if a["body"] is not None else None
c.putrequest(a["method"], a["path"])
if a["token"]: c.putheader("Authorization", "Bearer " + a["token"])
if body is not None:
    c.putheader("Content-Type", a["ctype"] or "application/json")
    c.putheader("Content-Length", str(len(body)))
c.endheaders()
if body is not None:
    if a["trickle"]:
        half = len(body) // 2
        c.send(body[:half])
        print("sent-half", flush=True)
        time.sleep(a["trickle"])
        c.send(body[half:])
    else:
        c.send(body)
r = c.getresponse()
print(json.dumps({"status": r.status, "body": r.read().decode("utf-8", "replace")}), flush=True)
"""


def conf(port, token_line):
    return ("[server]\nlisten = 127.0.0.1:%d\nshutdown_timeout = 10\n[auth]\n%s\n" %
            (port, token_line))


def tsv(pid, n):
    rows = ["playlist_id\titem_id\ttitle\tartist"]
    rows += ["%s\t%d\tSong %d\tSomeone" % (pid, i, i) for i in range(1, n + 1)]
    return "\n".join(rows) + "\n"


CT = None


def set_up():
    """Boots the container with the build installed; exits 77 (or 1 under
    CI=true) where that cannot be done."""
    global CT
    binary = os.environ.get("ITEMVECD")
    build = os.environ.get("ITEMVEC_BUILD")
    if not binary or not build:
        raise RuntimeError("ITEMVECD / ITEMVEC_BUILD not set (run through ctest)")
    if os.geteuid() != 0:
        give_up("needs root (debootstrap, systemd-nspawn)")
    for tool in ("debootstrap", "systemd-nspawn", "nsenter", "unshare", "chroot", "ldd"):
        if not shutil.which(tool, path=PATH):
            give_up("%s not found (scripts/deps.sh test installs it)" % tool)
    # The units' PrivateUsers=yes needs user namespaces, which the kernel
    # refuses (EPERM) to a process in a chroot, and so to a container
    # booted from one: probe from here.
    p = sh(["unshare", "--user", "true"], check=False)
    if p.returncode != 0:
        give_up("cannot create a user namespace (%s), so neither can the container's "
                "systemd for PrivateUsers=yes; in a chroot, run in a mount namespace whose "
                "root is the tree (unshare -m + pivot_root) instead" % p.stderr.strip())
    clean_stale()
    log("preparing the image")
    ensure_image(runtime_packages(binary))
    log("image ready")
    CT = Container()
    CT.populate(build)
    log("copied the image and installed the build (DESTDIR=%s)" % CT.root)
    # Tokens that `systemctl reload` can rotate: a file the daemon reads
    # itself, readable through a static group (docs/operations.md).
    CT.run_chroot(["groupadd", "--system", "itemvec-tokens"])
    CT.write("/etc/itemvec/tokens", TOKEN_A + "\n", 0o640)
    CT.run_chroot(["chgrp", "itemvec-tokens", "/etc/itemvec/tokens"])
    CT.write("/etc/itemvec/itemvecd.conf", conf(PORT, "token_file = /etc/itemvec/tokens"))
    CT.write("/etc/systemd/system/itemvecd.service.d/50-tokens.conf",
             "[Service]\nSupplementaryGroups=itemvec-tokens\n")
    log("booting %s" % CT.root)
    err = CT.boot()
    if err:
        with open(os.path.join(CT.tmp, "console.log")) as f:
            tail = "\n".join(f.read().splitlines()[-20:])
        CT.shutdown()
        if "MS_SLAVE" in tail:
            err += " (a chroot whose root is not a mount point: bind-mount it onto itself)"
        give_up("the container cannot boot: %s\n%s" % (err, tail))
    log("booted (PID 1 is %d on the host)" % CT.pid1)


class Units(unittest.TestCase):
    """In order (unittest runs methods by name): each step leaves
    itemvecd.service as the next one expects it."""

    def assertActive(self, unit):
        self.assertEqual(CT.prop(unit, "ActiveState"), "active", CT.journal(unit)[-2000:])

    def test_1_start_waits_for_ready(self):
        # Control: without NOTIFY_SOCKET the daemon never says READY=1, so
        # the start must time out although the daemon is up and serving.
        dropin = "/etc/systemd/system/itemvecd.service.d/90-no-notify.conf"
        CT.write(dropin, "[Service]\nUnsetEnvironment=NOTIFY_SOCKET\nTimeoutStartSec=6s\n"
                         "WatchdogSec=0\nRestart=no\n")
        CT.run(["systemctl", "daemon-reload"])
        p = CT.run(["systemctl", "start", "itemvecd"], check=False)
        self.assertNotEqual(p.returncode, 0, "started without READY=1")
        self.assertEqual(CT.prop("itemvecd", "Result"), "timeout")
        self.assertIn("listening on", CT.journal("itemvecd"))
        CT.remove(dropin)
        CT.run(["systemctl", "daemon-reload"])
        CT.run(["systemctl", "reset-failed", "itemvecd"], check=False)
        CT.run(["journalctl", "--rotate"], check=False)

        since = CT.run(["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
        CT.run(["systemctl", "start", "itemvecd"])
        self.assertActive("itemvecd")
        # READY=1 comes with STATUS=serving ...
        self.assertTrue(CT.prop("itemvecd", "StatusText").startswith("serving"),
                        CT.prop("itemvecd", "StatusText"))
        r = CT.http(PORT, "GET", "/readyz")
        self.assertEqual(r["status"], 200, r)
        lines = CT.run(["journalctl", "--no-pager", "-o", "cat", "--since", since,
                        "_PID=1", "+", "_SYSTEMD_UNIT=itemvecd.service"]).stdout.splitlines()
        listening = [i for i, ln in enumerate(lines) if "listening on" in ln]
        started = [i for i, ln in enumerate(lines) if ln.startswith("Started itemvecd.service")]
        self.assertTrue(listening and started, "\n".join(lines))
        self.assertLess(listening[-1], started[-1], "\n".join(lines))

    def test_2_reload_applies_token_file(self):
        self.assertEqual(CT.http(PORT, "GET", "/v1/info", TOKEN_A)["status"], 200)
        self.assertEqual(CT.http(PORT, "GET", "/v1/info", TOKEN_B)["status"], 401)
        pid = CT.prop("itemvecd", "MainPID")
        CT.write("/etc/itemvec/tokens", TOKEN_B + "\n", 0o640)
        CT.run(["systemctl", "reload", "itemvecd"])
        # reload returns once SIGHUP is sent; the daemon applies it in its loop
        deadline = time.monotonic() + 10
        while (CT.http(PORT, "GET", "/v1/info", TOKEN_B)["status"] != 200 and
               time.monotonic() < deadline):
            time.sleep(0.1)
        self.assertEqual(CT.prop("itemvecd", "MainPID"), pid, "reload restarted the daemon")
        self.assertEqual(CT.http(PORT, "GET", "/v1/info", TOKEN_B)["status"], 200)
        self.assertEqual(CT.http(PORT, "GET", "/v1/info", TOKEN_A)["status"], 401)
        self.assertIn("reload: configuration reloaded", CT.journal("itemvecd"))

    def test_2b_credential_needs_restart(self):
        """LoadCredential= copies the file when the service starts: systemd
        252 does not refresh it on reload, so a token given as a credential
        is rotated by a restart (as docs/operations.md says)."""
        dropin = "/etc/systemd/system/itemvecd.service.d/60-credential.conf"
        CT.write(dropin, "[Service]\nLoadCredential=tokens:/etc/itemvec/tokens.cred\n")
        CT.write("/etc/itemvec/tokens.cred", TOKEN_A + "\n", 0o600)
        CT.write("/etc/itemvec/itemvecd.conf", conf(PORT, "token_file = tokens"))
        CT.run(["systemctl", "daemon-reload"])
        CT.run(["systemctl", "restart", "itemvecd"])
        self.assertEqual(CT.http(PORT, "GET", "/v1/info", TOKEN_A)["status"], 200)
        CT.write("/etc/itemvec/tokens.cred", TOKEN_B + "\n", 0o600)
        CT.run(["systemctl", "reload", "itemvecd"])
        time.sleep(1)
        self.assertEqual(CT.http(PORT, "GET", "/v1/info", TOKEN_B)["status"], 401,
                         "systemd refreshed the credential on reload: update docs/operations.md")
        CT.run(["systemctl", "restart", "itemvecd"])
        self.assertEqual(CT.http(PORT, "GET", "/v1/info", TOKEN_B)["status"], 200)
        self.assertEqual(CT.http(PORT, "GET", "/v1/info", TOKEN_A)["status"], 401)
        CT.remove(dropin)
        CT.write("/etc/itemvec/itemvecd.conf", conf(PORT, "token_file = /etc/itemvec/tokens"))
        CT.run(["systemctl", "daemon-reload"])
        CT.run(["systemctl", "restart", "itemvecd"])

    def test_3_watchdog_restarts_a_hung_daemon(self):
        dropin = "/etc/systemd/system/itemvecd.service.d/90-watchdog.conf"
        CT.write(dropin, "[Service]\nWatchdogSec=3s\n")
        CT.run(["systemctl", "daemon-reload"])
        CT.run(["systemctl", "restart", "itemvecd"])
        pid = CT.prop("itemvecd", "MainPID")
        restarts = int(CT.prop("itemvecd", "NRestarts"))
        time.sleep(4)  # longer than WatchdogSec: keep-alives keep a healthy daemon alive
        self.assertEqual(CT.prop("itemvecd", "MainPID"), pid, "watchdog killed a healthy daemon")
        CT.run(["sh", "-c", "kill -STOP %s" % pid])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = CT.prop("itemvecd", "MainPID")
            if now not in ("0", pid) and CT.prop("itemvecd", "ActiveState") == "active":
                break
            time.sleep(0.5)
        self.assertNotEqual(CT.prop("itemvecd", "MainPID"), pid, "a hung daemon was not restarted")
        self.assertActive("itemvecd")
        self.assertGreater(int(CT.prop("itemvecd", "NRestarts")), restarts)
        self.assertIn("Watchdog timeout", CT.run(["journalctl", "--no-pager", "-o", "cat",
                                                  "-u", "itemvecd"]).stdout)
        CT.remove(dropin)
        CT.run(["systemctl", "daemon-reload"])
        CT.run(["systemctl", "restart", "itemvecd"])

    def in_daemon_ns(self, script, as_daemon=False):
        """Runs script in the daemon's mount namespace, as root or as the
        daemon's (dynamic) uid and gid."""
        pid = CT.prop("itemvecd", "MainPID")
        ids = []
        if as_daemon:
            uid = CT.run(["stat", "-c", "%u", "/proc/%s" % pid]).stdout.strip()
            ids = ["-S", uid, "-G", uid]
        return CT.run(["nsenter", "-t", pid, "-m", "-r", "-w"] + ids + ["sh", "-c", script],
                      check=False)

    def test_4_protect_system(self):
        for as_daemon in (False, True):
            for path in ("/etc/itemvec/probe", "/usr/probe", "/var/probe", "/var/lib/probe",
                         "/var/log/probe"):
                p = self.in_daemon_ns("touch %s" % path, as_daemon)
                self.assertNotEqual(p.returncode, 0,
                                    "%s writable in the daemon's namespace" % path)
                if not as_daemon:  # root is held back by the read-only mount alone
                    self.assertIn("Read-only file system", p.stderr, path)
            p = self.in_daemon_ns("touch /var/lib/itemvec/probe && rm /var/lib/itemvec/probe",
                                  as_daemon)
            self.assertEqual(p.returncode, 0, p.stderr)
        # Control: the same write outside the daemon's namespace succeeds.
        CT.run(["sh", "-c", "touch /etc/itemvec/probe && rm /etc/itemvec/probe"])

    def test_5_dynamic_user_owns_state(self):
        pid = CT.prop("itemvecd", "MainPID")
        uid = CT.run(["sh", "-c", "sed -n 's/^Uid:[[:space:]]*\\([0-9]*\\).*/\\1/p' "
                                  "/proc/%s/status" % pid]).stdout.strip()
        self.assertTrue(61184 <= int(uid) <= 65519, "not a dynamic uid: %s" % uid)
        out = CT.run(["stat", "-c", "%u %a %n", "/var/lib/private/itemvec",
                      "/var/lib/private/itemvec/itemvec.db"]).stdout.split("\n")
        d_uid, d_mode, _ = out[0].split()
        f_uid, f_mode, _ = out[1].split()
        self.assertEqual((d_uid, f_uid), (uid, uid), out)
        self.assertEqual(d_mode, "750")
        self.assertEqual(f_mode, "600")
        self.assertEqual(os.readlink(os.path.join(CT.root, "var/lib/itemvec")), "private/itemvec")

    def test_6_stop_drains_and_exits_0(self):
        upload = CT.http_popen(PORT, "POST", "/v1/playlists", TOKEN_B, body=tsv("drain", 2000),
                               trickle=1.5, ctype="text/tab-separated-values")
        self.assertEqual(upload.stdout.readline().strip(), "sent-half")
        CT.run(["systemctl", "stop", "itemvecd"], timeout=90)
        out, err = upload.communicate(timeout=60)
        reply = json.loads(out.splitlines()[-1])
        self.assertTrue(200 <= reply["status"] < 300, reply)
        self.assertEqual(CT.prop("itemvecd", "Result"), "success")
        # 0 is an exit status: a daemon killed by SIGTERM would show 15
        self.assertEqual(CT.prop("itemvecd", "ExecMainStatus"), "0")
        j = CT.journal("itemvecd")
        self.assertLess(j.rindex("SIGTERM: stopping (draining requests"), j.rindex("info stopped\n"))
        self.assertLess(j.rindex("POST /v1/playlists 200"), j.rindex("info stopped\n"))

    def test_7_journal_has_the_log_lines(self):
        j = CT.journal("itemvecd")
        for want in ("listening on 127.0.0.1:%d" % PORT, "reload: configuration reloaded",
                     "SIGTERM: stopping (draining requests", "stopped"):
            self.assertIn(want, j)
        # the daemon's "<6>" prefix became the entry's priority (info)
        out = CT.run(["journalctl", "--no-pager", "-o", "json", "-u", "itemvecd",
                      "-g", "listening on"]).stdout
        entries = [json.loads(ln) for ln in out.splitlines() if ln.strip()]
        self.assertTrue(entries)
        self.assertEqual({e["PRIORITY"] for e in entries}, {"6"})

    def test_8_template_two_catalogs(self):
        # The plain unit and the template both claim /var/lib/itemvec (the
        # units say: not both on one host); this host moves to instances.
        CT.run(["systemctl", "stop", "itemvecd"])
        CT.run(["rm", "-rf", "/var/lib/itemvec", "/var/lib/private/itemvec"])
        CT.write("/etc/itemvec/music.conf", conf(8081, ""))
        CT.write("/etc/itemvec/books.conf", conf(8082, ""))
        CT.run(["systemctl", "start", "itemvecd@music", "itemvecd@books"])
        for u in ("itemvecd@music", "itemvecd@books"):
            self.assertActive(u)
        pids = [CT.prop(u, "MainPID") for u in ("itemvecd@music", "itemvecd@books")]
        self.assertNotEqual(pids[0], pids[1])
        uids = [CT.run(["stat", "-c", "%u", "/proc/" + p]).stdout.strip() for p in pids]
        self.assertNotEqual(uids[0], uids[1], "the catalogs share one uid")
        r = CT.http(8081, "POST", "/v1/playlists", body=tsv("m1", 3),
                    ctype="text/tab-separated-values")
        self.assertTrue(200 <= r["status"] < 300, r)
        music = json.loads(CT.http(8081, "GET", "/v1/info")["body"])["counts"]
        books = json.loads(CT.http(8082, "GET", "/v1/info")["body"])["counts"]
        self.assertEqual((music["playlists"], books["playlists"]), (1, 0))
        for cat in ("music", "books"):
            self.assertTrue(os.path.exists(os.path.join(
                CT.root, "var/lib/private/itemvec", cat, "itemvec.db")), cat)
        CT.run(["systemctl", "stop", "itemvecd@music", "itemvecd@books"])
        for u in ("itemvecd@music", "itemvecd@books"):
            self.assertEqual(CT.prop(u, "Result"), "success")
            self.assertEqual(CT.prop(u, "ExecMainStatus"), "0")


def main():
    set_up()
    try:
        res = unittest.main(verbosity=2, exit=False, failfast=True).result
    finally:
        CT.shutdown()
    log("done")
    sys.exit(0 if res.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
