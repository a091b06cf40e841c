#!/usr/bin/python3
"""Fresh-machine guard (issue 12), run by ./test.sh after each build.

Checks that scripts/deps.sh installs everything the build and the tests
use, so that a fresh Debian 12 (`debootstrap --variant=minbase bookworm`)
builds and tests the project. What is used is derived, not listed:

  - headers: every system header in the compiler's dependency files
    (BUILD/**/*.o.d, written by gcc/clang -MD for each object) and, for the
    bench profile, every header of the C++ sources in bench/ that CMake does
    not build (one-off comparisons built by hand: `g++ -M` on each);
  - libraries: every library on the link lines (BUILD/**/link.txt: paths,
    -l names resolved with the same compiler's -print-file-name, the
    compiler itself and, for -fsanitize=, clang's runtime archives) and
    every shared library the built executables load (ldd);
  - Python modules: every module imported by tests/, bench/ and scripts/
    Python files, resolved with this interpreter (/usr/bin/python3, the
    one ctest runs);
  - tools: the programs the tests and scripts run (TOOLS below: programs
    are not derivable from source the way headers are).

Each is mapped to its Debian package (dpkg -S) and must be reachable from
the packages `scripts/deps.sh --list PROFILE` names, through installed
packages' Depends/Pre-Depends (any installed alternative, virtual packages
through Provides), or be part of every Debian (Essential: yes or Priority:
required, which minbase installs). A file no package owns (e.g. under
/usr/local) fails too: a fresh machine would not have it.

Usage: scripts/check_deps.py [--profile build|test|bench] BUILD_DIR...
Exit 0 when everything is reached, 1 with one line per miss otherwise.
Single-threaded, read-only; needs dpkg.
"""
import ast
import glob
import importlib.util
import os
import re
import shlex
import subprocess
import sys

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYS_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

# Programs run by the tests, test.sh, run.sh and scripts/ (profile test),
# and by the bench scripts (profile bench).
TOOLS = {
    "build": ["cmake", "make", "pkg-config", "gcc", "curl", "python3"],
    "test": ["clang", "ctest", "systemd-analyze", "debootstrap", "systemd-nspawn", "nsenter",
             "chroot", "ldd", "dpkg", "mount", "sqlite3"],
    "bench": ["wrk", "nginx", "free", "getconf"],
}
PROFILES = {"build": ["build"], "test": ["build", "test"], "bench": ["build", "test", "bench"]}
SANITIZER_RUNTIMES = {"address": ["asan", "asan_static", "asan_cxx"],
                      "undefined": ["ubsan_standalone", "ubsan_standalone_cxx"],
                      "thread": ["tsan", "tsan_cxx"], "fuzzer": ["fuzzer"]}


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def named_packages(profile):
    p = run([os.path.join(SRC, "scripts", "deps.sh"), "--list", profile])
    if p.returncode != 0:
        sys.exit("check_deps: scripts/deps.sh --list %s failed: %s" % (profile, p.stderr))
    return p.stdout.split()


def installed():
    """{package: (essential_or_required, [dependency groups], [provides])}"""
    fmt = "${Package}\t${Status}\t${Essential}\t${Priority}\t${Provides}\t${Pre-Depends}\t${Depends}\n"
    out = run(["dpkg-query", "-W", "-f", fmt]).stdout
    pkgs = {}
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) < 7 or not f[1].endswith(" installed"):
            continue
        groups = [g.strip() for g in (f[5] + "," + f[6]).split(",") if g.strip()]
        provides = [bare(x) for x in f[4].split(",") if x.strip()]
        pkgs[f[0]] = (f[2] == "yes" or f[3] == "required", groups, provides)
    return pkgs


def bare(dep):
    """'libc6:amd64 (>= 2.34)' -> 'libc6'"""
    return re.split(r"[\s:(\[]", dep.strip(), 1)[0]


def closure(named, pkgs):
    providers = {}
    for name, (_, _, provides) in pkgs.items():
        for v in provides:
            providers.setdefault(v, []).append(name)
    todo = [p for p in named if p in pkgs] + [p for p, v in pkgs.items() if v[0]]
    seen = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for group in pkgs[p][1]:
            for alt in group.split("|"):
                name = bare(alt)
                todo += [x for x in [name] + providers.get(name, []) if x in pkgs]
    return seen


def depfile_headers(build, roots):
    """{header path: first object that includes it}"""
    found = {}
    for d in glob.glob(os.path.join(build, "**", "*.o.d"), recursive=True):
        with open(d) as f:
            text = f.read().replace("\\\n", " ")
        _, _, deps = text.partition(": ")
        for path in deps.split():
            if path.startswith("/") and not path.startswith(roots):
                found.setdefault(os.path.normpath(path), os.path.relpath(d, build))
    return found


def hand_built_headers(roots):
    """{header path or missing header name: source} of bench/*.cpp, which
    CMake does not build (so no depfile lists their headers)."""
    found = {}
    for src in sorted(glob.glob(os.path.join(SRC, "bench", "*.cpp"))):
        where = os.path.relpath(src, SRC)
        p = run(["g++", "-M", "-MG", "-I", SRC, src], env={"PATH": SYS_PATH, "LANG": "C"})
        _, _, deps = p.stdout.replace("\\\n", " ").partition(": ")
        for path in deps.split():
            if path.startswith("/") and not path.startswith(roots):
                found.setdefault(os.path.normpath(path), where)
            elif not path.startswith("/") and path != where:
                # -MG: a header the compiler cannot find (its package is absent)
                found.setdefault("header %s (not on this machine)" % path, where)
    return found


_libs = {}


def find_lib(cc, name):
    """The file `cc -lname` links, or None."""
    if (cc, name) not in _libs:
        _libs[cc, name] = None
        for ext in (".so", ".a"):
            r = run([cc, "-print-file-name=lib%s%s" % (name, ext)]).stdout.strip()
            if r.startswith("/") and os.path.exists(r):
                _libs[cc, name] = r
                break
    return _libs[cc, name]


def link_inputs(build, roots):
    """{library or tool path: the link.txt that uses it}"""
    found = {}
    for lt in glob.glob(os.path.join(build, "**", "link.txt"), recursive=True):
        with open(lt) as f:
            words = shlex.split(f.read())
        if not words:
            continue
        where = os.path.relpath(lt, build)
        cc = words[0]
        if cc.startswith("/"):
            found.setdefault(cc, where)
        for w in words[1:]:
            path = None
            if w.startswith("-l"):
                path = find_lib(cc, w[2:])
                if not path:
                    found.setdefault("-l" + w[2:] + " (not found by %s)" % cc, where)
                    continue
            elif w.startswith("/") and re.search(r"\.(so|a)(\.[0-9.]+)?$", w):
                path = w
            elif w.startswith("-fsanitize=") and "clang" in os.path.basename(cc):
                rt = run([cc, "-print-runtime-dir"]).stdout.strip()
                for san in w.split("=", 1)[1].split(","):
                    for lib in SANITIZER_RUNTIMES.get(san, []):
                        a = os.path.join(rt, "libclang_rt.%s-x86_64.a" % lib)
                        if os.path.exists(a):
                            found.setdefault(a, where)
            if path and not path.startswith(roots):
                found.setdefault(path, where)
    return found


def loaded_libraries(build):
    """{shared library: an executable that loads it}, from one ldd call over
    every ELF executable in the build tree."""
    exes = []
    for root, _, files in os.walk(build):
        for name in files:
            path = os.path.join(root, name)
            if os.access(path, os.X_OK) and not os.path.islink(path):
                with open(path, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        exes.append(path)
    found = {}
    if not exes:
        return found
    exe = exes[0]
    for line in run(["ldd"] + exes).stdout.splitlines():
        if not line.startswith(("\t", " ")) and line.endswith(":"):
            exe = line[:-1]
            continue
        parts = line.split()
        if not parts:
            continue
        lib = parts[2] if len(parts) > 2 and parts[1] == "=>" else parts[0]
        where = os.path.relpath(exe, build)
        if "not found" in line:
            found.setdefault(parts[0] + " (not found)", where)
        elif lib.startswith("/"):
            found.setdefault(lib, where)
    return found


def python_modules():
    """{module file: the source file that imports it}"""
    files = (glob.glob(os.path.join(SRC, "tests", "**", "*.py"), recursive=True) +
             glob.glob(os.path.join(SRC, "bench", "*.py")) +
             glob.glob(os.path.join(SRC, "scripts", "*.py")))
    local = {os.path.splitext(os.path.basename(f))[0] for f in files}
    found = {}
    for f in files:
        with open(f) as fh:
            tree = ast.parse(fh.read(), f)
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        for n in sorted(names - local):
            spec = importlib.util.find_spec(n)
            where = os.path.relpath(f, SRC)
            if spec is None:
                found.setdefault("python module %s (not importable by %s)" % (n, sys.executable),
                                 where)
            elif spec.origin and spec.origin.startswith("/"):
                found.setdefault(spec.origin, where)
    return found


def tools(profile):
    found = {}
    for part in PROFILES[profile]:
        for t in TOOLS[part]:
            p = run(["sh", "-c", "command -v " + t], env={"PATH": SYS_PATH}).stdout.strip()
            found.setdefault(p if p.startswith("/") else "program %s (not found)" % t,
                             "tool of profile " + part)
    return found


def owners(paths):
    """{path: [packages]} from one dpkg -S call; a path dpkg does not know is
    retried by its real path and across the /usr merge."""
    def ask(ps):
        got = {}
        if not ps:
            return got
        out = run(["dpkg", "-S"] + sorted(ps)).stdout
        for ln in out.splitlines():
            if ln.startswith("diversion") or ": " not in ln:
                continue
            pk, _, path = ln.partition(": ")
            got.setdefault(path, []).extend(bare(x) for x in pk.split(","))
        return got

    def variants(p):
        r = os.path.realpath(p)
        v = [r]
        for a, b in (("/usr/lib/", "/lib/"), ("/lib/", "/usr/lib/"), ("/usr/bin/", "/bin/"),
                     ("/bin/", "/usr/bin/"), ("/usr/sbin/", "/sbin/"), ("/sbin/", "/usr/sbin/")):
            for x in (p, r):
                if x.startswith(a):
                    v.append(b + x[len(a):])
        return v

    got = ask([p for p in paths if p.startswith("/")])
    retry = {p: variants(p) for p in paths if p.startswith("/") and p not in got}
    more = ask({v for vs in retry.values() for v in vs})
    for p, vs in retry.items():
        for v in vs:
            if v in more:
                got[p] = more[v]
                break
    return got


def main(argv):
    profile = "test"
    if len(argv) > 2 and argv[1] == "--profile":
        profile = argv[2]
        argv = argv[:1] + argv[3:]
    builds = [os.path.abspath(b) for b in argv[1:]]
    if profile not in PROFILES or not builds:
        sys.exit(__doc__.split("\n\n")[-2])
    named = named_packages(profile)
    pkgs = installed()
    errors = ["scripts/deps.sh names %s, which is not installed (run scripts/deps.sh %s)" %
              (p, profile) for p in named if p not in pkgs]
    reached = closure(named, pkgs)

    used = {}
    for build in builds:
        if not glob.glob(os.path.join(build, "**", "*.o.d"), recursive=True):
            errors.append("%s: no dependency files (build it first)" % build)
        roots = (SRC + "/", build + "/")
        for kind, got in (("header", depfile_headers(build, roots)),
                          ("library", link_inputs(build, roots)),
                          ("library", loaded_libraries(build))):
            for path, where in got.items():
                used.setdefault(path, (kind, where))
    extra = [("header", hand_built_headers((SRC + "/",)))] if profile == "bench" else []
    for kind, got in extra + [("python module", python_modules()), ("tool", tools(profile))]:
        for path, where in got.items():
            used.setdefault(path, (kind, where))

    own = owners(used)
    counts = {}
    for path, (kind, where) in sorted(used.items()):
        counts[kind] = counts.get(kind, 0) + 1
        if not path.startswith("/"):
            errors.append("%s, used by %s" % (path, where))
            continue
        ps = own.get(path)
        if not ps:
            errors.append("%s %s (used by %s) belongs to no Debian package: a fresh machine "
                          "lacks it" % (kind, path, where))
        elif not any(p in reached for p in ps):
            errors.append("%s %s (used by %s) is in %s, which scripts/deps.sh (%s) does not "
                          "install, directly or through Depends: add it to scripts/deps.sh" %
                          (kind, path, where, " or ".join(sorted(set(ps))), profile))
    summary = ", ".join("%d %s" % (n, k + ("s" if n != 1 else "")) for k, n in
                        sorted(counts.items())).replace("librarys", "libraries")
    if errors:
        print("check_deps: FAILED (%s checked)" % summary)
        for e in errors:
            print("  " + e)
        return 1
    print("check_deps: %s, all from packages scripts/deps.sh %s installs (%d named, %d with "
          "their dependencies and the essential set)" % (summary, profile, len(named),
                                                         len(reached)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
