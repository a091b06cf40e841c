"""Helpers for API tests that run the pipeline: upload → pmi → train."""
import time


def wait_job(d, job_id, states=("succeeded", "failed", "cancelled"), timeout=120):
    deadline = time.time() + timeout
    j = None
    while time.time() < deadline:
        j = d.json("GET", "/v1/jobs/" + job_id)
        if j["state"] in states:
            return j
        time.sleep(0.05)
    raise AssertionError("job %s not in %s after %ss: %r" % (job_id, states, timeout, j))


def run_job(d, type_, params=None):
    body = {"type": type_}
    if params is not None:
        body["params"] = params
    r = d.request("POST", "/v1/jobs", body)
    if r.status != 202:
        raise AssertionError("POST /v1/jobs %r: %r" % (body, r))
    j = wait_job(d, r.json()["id"])
    if j["state"] != "succeeded":
        raise AssertionError("job failed: %r" % j)
    return j


def read_jsonl(body):
    import json
    return [json.loads(line) for line in body.decode().splitlines() if line]
