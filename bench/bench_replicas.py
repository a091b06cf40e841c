#!/usr/bin/env python3
"""Read replicas (issue 14), measured on one box: a primary with the
yes_small playlists and a trained model, two replicas (--replica-of), and
nginx (1 worker) balancing over the replicas.

Prints, never fails:
  - propagation: a new model activated on the primary (POST
    /v1/models/{id}/activate answered) until every replica serves it
    (/v1/info replica.model), three times, alternating two models;
  - one replica alone: wrk -t2 -c32 -d10s similar?k=10 on random items,
    rate, p99, and the replica's CPU time per request (/proc/<pid>/stat,
    utime + stime over the run / requests answered);
  - the two replicas behind nginx: the same wrk on nginx's port.

    python3 bench/bench_replicas.py [DATASET]     (default yes_small)

ITEMVECD overrides the binary (default build/itemvecd). Needs wrk and
nginx (scripts/deps.sh bench).
"""
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
os.environ.setdefault("ITEMVECD", os.path.join(HERE, "..", "build", "itemvecd"))
import itemvec_data as D  # noqa: E402
from daemon import Daemon, free_port  # noqa: E402
from pipeline import run_job  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wrk(port, ids, seconds=10):
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua.write("ids = {%s}\nmath.randomseed(42)\nrequest = function()\n"
              "  return wrk.format('GET', '/v1/items/' .. ids[math.random(#ids)] .. "
              "'/similar?k=10')\nend\n" % ",".join('"%s"' % i for i in ids))
    lua.close()
    out = subprocess.run(["wrk", "-t2", "-c32", "-d%ds" % seconds, "--latency", "-s", lua.name,
                          "http://127.0.0.1:%d" % port], capture_output=True, text=True).stdout
    os.unlink(lua.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    errors = re.findall(r"(Non-2xx.*|Socket errors.*)", out)
    return rate, total, p99, errors


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "yes_small"
    ds = D.load_yes(name)
    print("machine: %d cores; load %s" % (os.cpu_count(), open("/proc/loadavg").read().split()[:3]))
    tmp = tempfile.mkdtemp(prefix="itemvec-bench-rep-")
    primary = Daemon(state_dir=os.path.join(tmp, "primary"))
    os.makedirs(primary.state_dir)
    primary.start()
    url = "http://127.0.0.1:%d" % primary.port
    reps, nginx = [], None
    try:
        assert primary.upload(D.to_tsv(ds.rows())).status == 200
        run_job(primary, "pmi", {})
        models = []
        for seed in (1, 2):
            j = run_job(primary, "train", {"seed": seed, "activate": seed == 1})
            models.append(j["result"]["model"])
        print("primary: %s, models %s" % (name, models))
        for r in range(2):
            d = Daemon(state_dir=os.path.join(tmp, "replica%d" % r), args=["--replica-of", url])
            os.makedirs(d.state_dir)
            d.start()
            reps.append(d)
        # item ids the model serves (from the export's first 2000 lines)
        body = primary.request("GET", "/v1/embeddings").body.decode().splitlines()
        ids = [json.loads(line)["id"] for line in body[:2000]]
        for t in range(3):
            m = models[(t + 1) % 2]
            t0 = time.time()
            r = primary.request("POST", "/v1/models/%s/activate" % m)
            assert r.status in (200, 202), r
            while primary.json("GET", "/v1/info")["active_model"]["id"] != m:
                time.sleep(0.01)
            t1 = time.time()
            while any(d.json("GET", "/v1/info")["replica"]["model"] != m for d in reps):
                time.sleep(0.01)
            t2 = time.time()
            print("propagation %d: model %s active on the primary %.2f s after the call, "
                  "served by both replicas %.2f s after that" % (t + 1, m, t1 - t0, t2 - t1))
        # one replica alone
        d = reps[0]
        c0 = cpu_seconds(d.proc.pid)
        rate, total, p99, errors = wrk(d.port, ids)
        c1 = cpu_seconds(d.proc.pid)
        print("one replica: %.0f req/s, p99 %s, errors %s; replica CPU %.1f us per request "
              "(%.2f s for %d requests)" % (rate, p99, errors or "none",
                                             1e6 * (c1 - c0) / total, c1 - c0, total))
        # two replicas behind nginx
        port = free_port()
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write("worker_processes 1;\npid %s/nginx.pid;\nerror_log %s/nginx.err;\n"
                    "events { worker_connections 1024; }\nhttp {\n access_log off;\n"
                    " upstream itemvec_read { least_conn; %s keepalive 64; }\n"
                    " server { listen 127.0.0.1:%d;\n  location / { proxy_pass "
                    "http://itemvec_read; proxy_http_version 1.1; proxy_set_header Connection "
                    "\"\"; } }\n}\n" % (tmp, tmp, " ".join("server 127.0.0.1:%d;" % r.port
                                                           for r in reps), port))
        nginx = subprocess.Popen(["nginx", "-c", conf, "-g", "daemon off;"])
        time.sleep(0.5)
        cs0 = [cpu_seconds(r.proc.pid) for r in reps]
        rate, total, p99, errors = wrk(port, ids)
        cs1 = [cpu_seconds(r.proc.pid) for r in reps]
        print("two replicas behind nginx: %.0f req/s, p99 %s, errors %s; replicas' CPU %s s"
              % (rate, p99, errors or "none",
                 ", ".join("%.2f" % (b - a) for a, b in zip(cs0, cs1))))
        print("load after: %s" % open("/proc/loadavg").read().split()[:3])
    finally:
        if nginx:
            nginx.terminate()
            nginx.wait()
        for d in reps:
            d.stop()
        primary.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
