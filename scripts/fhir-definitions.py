#!/usr/bin/env python3
"""Build Hale's compact FHIR R4 definitions from the official package.

Reads hl7.fhir.r4.examples@4.0.1 (CC0, from the npm registry: it carries the full core
definitions) and writes crates/hale-fhir/definitions/r4.json.gz, which the server embeds,
so a fresh clone needs no network at build or run time.

    scripts/fhir-definitions.py [path/to/hl7.fhir.r4.examples-4.0.1.tgz]

Without an argument it runs `npm pack hl7.fhir.r4.examples@4.0.1` in a temporary folder.
What it keeps, per type: each element's cardinality, types, required value set and content
reference; per resource type: the search parameters whose FHIRPath it can reduce to simple
steps (the rest are left out, and so never advertised); the Patient compartment.
"""
import gzip, json, os, re, subprocess, sys, tarfile, tempfile

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "hale-fhir", "definitions", "r4.json.gz")
WANT = ["Bundle-resources.json", "Bundle-types.json", "Bundle-valuesets.json",
        "Bundle-v3-valuesets.json", "Bundle-v2-valuesets.json", "Bundle-searchParams.json"]


def load_package(tgz):
    out = {}
    with tarfile.open(tgz) as tar:
        for name in WANT:
            out[name] = json.load(tar.extractfile("package/" + name))
    with tarfile.open(tgz) as tar:
        out["compartment"] = json.load(tar.extractfile("package/CompartmentDefinition-patient.json"))
    return out


def element_type_codes(el):
    codes = []
    for t in el.get("type", []):
        code = t["code"]
        if code.startswith("http://hl7.org/fhirpath/System."):
            ext = [e for e in t.get("extension", []) if e["url"].endswith("structuredefinition-fhir-type")]
            code = ext[0]["valueUrl"] if ext else {"String": "string", "Boolean": "boolean",
                                                   "Integer": "integer", "Decimal": "decimal",
                                                   "Date": "date", "DateTime": "dateTime",
                                                   "Time": "time"}.get(code.rsplit(".", 1)[1], "string")
        codes.append(code)
    return codes


def build_types(pkg):
    types, resources = {}, []
    for bundle in ("Bundle-types.json", "Bundle-resources.json"):
        for e in pkg[bundle]["entry"]:
            sd = e["resource"]
            if sd.get("resourceType") != "StructureDefinition" or sd.get("derivation") == "constraint":
                continue
            name = sd["type"]
            if sd["kind"] == "resource" and not sd.get("abstract"):
                resources.append(name)
            elements = {}
            for el in sd["snapshot"]["element"]:
                path = el["path"]
                if "." not in path:
                    continue
                entry = {"min": el.get("min", 0), "max": el.get("max", "*")}
                codes = element_type_codes(el)
                if codes:
                    entry["t"] = codes
                if "contentReference" in el:
                    entry["ref"] = el["contentReference"].lstrip("#")
                b = el.get("binding")
                if b and b.get("strength") == "required" and b.get("valueSet") and codes == ["code"]:
                    entry["vs"] = b["valueSet"].split("|")[0]
                elements[path] = entry
            types[name] = {"kind": sd["kind"], "abstract": bool(sd.get("abstract")),
                           "base": (sd.get("baseDefinition") or "").rsplit("/", 1)[-1],
                           "elements": elements}
    return types, sorted(resources)


def build_valuesets(pkg, wanted):
    code_systems, value_sets = {}, {}
    for bundle in ("Bundle-valuesets.json", "Bundle-v3-valuesets.json", "Bundle-v2-valuesets.json"):
        for e in pkg[bundle]["entry"]:
            r = e["resource"]
            if r["resourceType"] == "CodeSystem" and r.get("content") == "complete":
                codes = []

                def walk(concepts):
                    for c in concepts:
                        codes.append(c["code"])
                        walk(c.get("concept", []))
                walk(r.get("concept", []))
                code_systems[r["url"]] = codes
            elif r["resourceType"] == "ValueSet":
                value_sets[r["url"]] = r

    def expand(url, depth=0):
        vs = value_sets.get(url)
        if vs is None or depth > 5 or "exclude" in vs.get("compose", {}):
            return None
        codes = []
        for inc in vs.get("compose", {}).get("include", []):
            if inc.get("filter"):
                return None
            if "concept" in inc:
                codes += [c["code"] for c in inc["concept"]]
            elif "system" in inc:
                if inc["system"] not in code_systems:
                    return None
                codes += code_systems[inc["system"]]
            for sub in inc.get("valueSet", []):
                more = expand(sub.split("|")[0], depth + 1)
                if more is None:
                    return None
                codes += more
        return sorted(set(codes)) or None

    out = {}
    for url in sorted(wanted):
        codes = expand(url)
        if codes is not None:
            out[url] = codes
    return out


STEP = re.compile(r"^(?P<name>[a-z][A-Za-z0-9]*)(?:\[0\])?$")


def compile_part(part, base, types):
    """Reduce one FHIRPath union member to steps, or None when it is beyond the subset."""
    part = part.strip()
    cast = None
    m = re.fullmatch(r"\((.+) as ([A-Za-z]+)\)(\..+)?", part)
    if m:
        part, cast, rest = m.group(1), m.group(2), m.group(3)
        if rest:
            part_rest = rest[1:]
        else:
            part_rest = None
    else:
        part_rest = None
    m = re.fullmatch(r"(.+)\.as\(([A-Za-z]+)\)", part)
    if m:
        part, cast = m.group(1), m.group(2)
    if not part.startswith(base + "."):
        return None
    body = part[len(base) + 1:]
    ref_type = None
    m = re.fullmatch(r"(.+)\.where\(resolve\(\) is ([A-Za-z]+)\)", body)
    if m:
        body, ref_type = m.group(1), m.group(2)
    steps = []
    tokens = re.findall(r"[a-zA-Z0-9\[\]]+(?:\([^)]*\))?", body)
    if ".".join(tokens) != body:
        return None
    for tok in tokens:
        m = re.fullmatch(r"where\(([a-z]+)='([^']*)'\)", tok)
        if m and steps:
            steps[-1]["where"] = [m.group(1), m.group(2)]
            continue
        m = STEP.match(tok)
        if not m:
            return None
        steps.append({"name": m.group("name")})
    if cast:
        path = base + "." + ".".join(s["name"] for s in steps)
        if (path + "[x]") in types.get(base, {}).get("elements", {}) or cast_is_choice(types, base, steps):
            steps[-1]["name"] += cast[0].upper() + cast[1:]
    if part_rest:
        if not re.fullmatch(r"[a-z]+", part_rest):
            return None
        steps.append({"name": part_rest})
    out = {"steps": steps}
    if ref_type:
        out["refType"] = ref_type
    return out


def cast_is_choice(types, base, steps):
    elements = types.get(base, {}).get("elements", {})
    path = base + "." + ".".join(s["name"] for s in steps)
    return (path + "[x]") in elements


def build_search(pkg, types, resources):
    search = {r: [] for r in resources}
    unsupported = {r: set() for r in resources}
    for e in pkg["Bundle-searchParams.json"]["entry"]:
        p = e["resource"]
        if p["type"] in ("composite", "special") or not p.get("expression"):
            for base in p["base"]:
                if base in unsupported:
                    unsupported[base].add(p["code"])
            continue
        bases = p["base"]
        if bases in (["Resource"], ["DomainResource"]):
            # Common parameters (_id, _lastUpdated, _tag, _profile, _security, _source) are
            # answered from the resource's own columns and meta; see hale-fhir search.rs.
            if p["code"] in ("_tag", "_profile", "_security", "_source"):
                for r in resources:
                    search[r].append({"name": p["code"], "type": p["type"],
                                      "paths": [{"steps": [{"name": "meta"}, {"name": p["code"][1:]}]}]})
            continue
        for base in bases:
            if base not in search:
                continue
            paths = []
            ok = True
            for part in p["expression"].split(" | "):
                part = part.strip()
                if not part.startswith(base + ".") and not part.startswith("(" + base + "."):
                    continue
                compiled = compile_part(part, base, types)
                if compiled is None:
                    ok = False
                    break
                paths.append(compiled)
            if ok and paths:
                entry = {"name": p["code"], "type": p["type"], "paths": paths}
                if p.get("target"):
                    entry["targets"] = p["target"]
                search[base].append(entry)
            else:
                unsupported[base].add(p["code"])
    for r in search:
        search[r].sort(key=lambda s: s["name"])
    return search, {r: sorted(v) for r, v in unsupported.items() if v}


def main():
    if len(sys.argv) > 1:
        tgz = sys.argv[1]
    else:
        tmp = tempfile.mkdtemp()
        subprocess.run(["npm", "pack", "--silent", "hl7.fhir.r4.examples@4.0.1"], cwd=tmp, check=True)
        tgz = os.path.join(tmp, "hl7.fhir.r4.examples-4.0.1.tgz")
    pkg = load_package(tgz)
    types, resources = build_types(pkg)
    wanted = {el["vs"] for t in types.values() for el in t["elements"].values() if "vs" in el}
    valuesets = build_valuesets(pkg, wanted)
    search, unsupported = build_search(pkg, types, resources)
    compartment = {}
    for res in pkg["compartment"]["resource"]:
        if res.get("param"):
            compartment[res["code"]] = res["param"]
    out = {"fhirVersion": "4.0.1", "source": "hl7.fhir.r4.examples@4.0.1 (CC0-1.0)",
           "resources": resources, "types": types, "valuesets": valuesets,
           "search": search, "unsupported": unsupported, "compartment": compartment}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    data = json.dumps(out, separators=(",", ":"), sort_keys=True).encode()
    with gzip.GzipFile(OUT, "wb", mtime=0) as f:
        f.write(data)
    n_params = sum(len(v) for v in search.values())
    print(f"{len(resources)} resource types, {len(types)} types, {len(valuesets)} value sets, "
          f"{n_params} search parameters -> {OUT} ({len(data)} bytes raw)")


if __name__ == "__main__":
    main()
