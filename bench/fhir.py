#!/usr/bin/env python3
"""Hale's FHIR benchmark client (standard library only).

    bench/fhir.py import  BASE TOKEN ROUNDS THREADS   # B6: Synthea transaction bundles
    bench/fhir.py ids     BASE TOKEN TYPE LIMIT FILE  # ids for the read benchmark
    bench/fhir.py big-record BASE TOKEN PATIENT N     # a record with N observations
    bench/fhir.py everything BASE TOKEN PATIENT RUNS  # B7 latency
    bench/fhir.py scale BASE TOKEN N THREADS IDS_FILE  # B4's 1 M resources: N in people of 1,000

BASE is the FHIR base URL (http://127.0.0.1:18091/fhir). TOKEN may be "-" for none.
Every figure is printed as `metric=NAME value=X`.
"""
import glob, http.client, json, os, random, statistics, sys, threading, time, urllib.parse, uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SYNTHEA = os.path.join(HERE, "..", "crates", "hale-testkit", "data", "synthea-r4-bundles")


def conn(base):
    u = urllib.parse.urlparse(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=120), u.path


def request(c, method, path, token, body=None):
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if token != "-":
        headers["Authorization"] = "Bearer " + token
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    return r.status, data


def fresh_ids(bundle):
    """A copy of a bundle with new urn:uuid full URLs, so servers that keep them see new data."""
    text = json.dumps(bundle)
    for e in bundle["entry"]:
        old = e["fullUrl"]
        text = text.replace(old, "urn:uuid:" + str(uuid.uuid4()))
    return text.encode()


def cmd_import(base, token, rounds, threads):
    bundles = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(SYNTHEA, "*.json")))]
    work = [(b, len(b["entry"])) for _ in range(int(rounds)) for b in bundles]
    payloads = [(fresh_ids(b), n) for b, n in work]
    lock = threading.Lock()
    done = {"resources": 0, "errors": 0}
    queue = list(payloads)

    def worker():
        c, path = conn(base)
        while True:
            with lock:
                if not queue:
                    return
                body, n = queue.pop()
            status, data = request(c, "POST", path or "/", token, body)
            with lock:
                if status == 200:
                    done["resources"] += n
                else:
                    done["errors"] += 1
                    if done["errors"] < 3:
                        print("error", status, data[:300], file=sys.stderr)

    start = time.time()
    ts = [threading.Thread(target=worker) for _ in range(int(threads))]
    [t.start() for t in ts]
    [t.join() for t in ts]
    secs = time.time() - start
    print(f"metric=bundle_import_resources_per_s value={done['resources'] / secs:.0f}")
    print(f"metric=bundle_import_resources value={done['resources']}")
    print(f"metric=bundle_import_errors value={done['errors']}")


def cmd_ids(base, token, rtype, limit, out):
    c, path = conn(base)
    ids, url = [], f"{path}/{rtype}?_count=1000&_elements=id"
    while url and len(ids) < int(limit):
        status, data = request(c, "GET", url, token)
        b = json.loads(data)
        ids += [f"{rtype}/{e['resource']['id']}" for e in b.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]
        nxt = [l["url"] for l in b.get("link", []) if l["relation"] == "next"]
        url = urllib.parse.urlparse(nxt[0])._replace(scheme="", netloc="").geturl() if nxt else None
    with open(out, "w") as f:
        f.write("\n".join(ids[: int(limit)]) + "\n")
    print(f"metric=ids_collected value={len(ids[:int(limit)])}", file=sys.stderr)


def cmd_big_record(base, token, patient, n):
    c, path = conn(base)
    n = int(n)
    sent = 0
    while sent < n:
        k = min(1000, n - sent)
        entries = observation_entries(f"Patient/{patient}", sent, k)
        status, data = request(c, "POST", path or "/", token, json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}).encode())
        if status != 200:
            sys.exit(f"big-record: {status} {data[:300]}")
        sent += k


def observation_entries(patient_url, first, k):
    """k small vital-sign Observations of the person at patient_url, numbered from first."""
    codes = ["8867-4", "29463-7", "8480-6", "8462-4", "2339-0", "8310-5"]
    return [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "request": {"method": "POST", "url": "Observation"},
             "resource": {"resourceType": "Observation", "status": "final",
                          "code": {"coding": [{"system": "http://loinc.org", "code": codes[j % len(codes)]}]},
                          "subject": {"reference": patient_url},
                          "effectiveDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1.6e9 + j * 3600)),
                          "valueQuantity": {"value": 60 + j % 40, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}}
            for j in range(first, first + k)]


def cmd_scale(base, token, people, threads, out):
    """B4 at its stated size: `people` new people, each a transaction of one Patient and 999
    Observations (1,000 resources), loaded on `threads` connections; writes 100,000 of the
    created Observations' ids, drawn at random, to `out` for the read benchmark."""
    left, lock, ids, created = [int(people)], threading.Lock(), [], [0]
    failures = []

    def worker():
        c, path = conn(base)
        while True:
            with lock:
                if left[0] == 0 or failures:
                    return
                left[0] -= 1
            patient = f"urn:uuid:{uuid.uuid4()}"
            entries = [{"fullUrl": patient, "request": {"method": "POST", "url": "Patient"},
                        "resource": {"resourceType": "Patient", "name": [{"family": "Scale", "given": ["Test"]}]}}]
            entries += observation_entries(patient, 0, 999)
            body = json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}).encode()
            status, data = request(c, "POST", path or "/", token, body)
            if status != 200:
                failures.append(f"{status} {data[:300]}")
                return
            # "Observation/ID/_history/1", relative or absolute
            got = ["/".join(e["response"]["location"].split("/_history")[0].split("/")[-2:])
                   for e in json.loads(data)["entry"]]
            with lock:
                created[0] += len(got)
                ids.extend(i for i in got if i.startswith("Observation/"))

    start = time.time()
    ts = [threading.Thread(target=worker) for _ in range(int(threads))]
    [t.start() for t in ts]
    [t.join() for t in ts]
    if failures:
        sys.exit(f"scale: {failures[0]}")
    print(f"metric=scale_resources value={created[0]}")
    print(f"metric=scale_load_s value={time.time() - start:.0f}")
    with open(out, "w") as f:
        f.write("\n".join(random.sample(ids, min(100000, len(ids)))) + "\n")


def cmd_everything(base, token, patient, runs):
    c, path = conn(base)
    times = []
    for _ in range(int(runs)):
        t = time.perf_counter()
        status, data = request(c, "GET", f"{path}/Patient/{patient}/$everything?_count=5000", token)
        times.append((time.perf_counter() - t) * 1000)
        assert status == 200, data[:200]
    n = len(json.loads(data).get("entry", []))
    print(f"metric=everything_resources value={n}")
    print(f"metric=everything_p50_ms value={statistics.median(times):.1f}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"import": cmd_import, "ids": cmd_ids, "big-record": cmd_big_record, "everything": cmd_everything, "scale": cmd_scale}[cmd](*args)
