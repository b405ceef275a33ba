#!/usr/bin/env python3
"""Validates a FHIR R4 International Patient Summary written by `carnet export --fhir`.

Two layers, both offline:
1. the FHIR library `fhir.resources` (pinned in .ci/install-tools) parses the whole Bundle
   with its R4B models (the default models are R5, which reject R4 content): structure,
   cardinalities, data types, resource types, and every contained resource;
2. the IPS invariants that library does not check: a `document` Bundle with an identifier
   and a timestamp, the Composition first (bdl-ips-1) typed LOINC 60591-5, its subject the
   Patient of the Bundle, the required sections (allergies 48765-2, medications 10160-0,
   problems 11450-4) present each with entries or an emptyReason (never both), optional
   sections only from the IPS list, every fullUrl a urn:uuid: and every reference resolved
   inside the Bundle.

Usage: validate_ips.py FILE.json   (exit 0 and "valid: ..." on stdout, else exit 1 with the
problems on stderr)
"""
import json
import re
import sys

REQUIRED = {"48765-2": "allergies", "10160-0": "medications", "11450-4": "problems"}
OPTIONAL = {
    "11369-6", "30954-2", "47519-4", "46264-8", "42348-3", "104605-1", "8716-3",
    "29762-2", "10162-6", "81338-6", "18776-5", "47420-5",
}
UUID = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def references(value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "reference" and isinstance(v, str):
                out.append(v)
            else:
                references(v, out)
    elif isinstance(value, list):
        for v in value:
            references(v, out)
    return out


def loinc(concept):
    return {c.get("code") for c in (concept or {}).get("coding", [])
            if c.get("system") == "http://loinc.org"}


def invariants(b):
    problems = []
    if b.get("resourceType") != "Bundle":
        return ["not a Bundle"]
    if b.get("type") != "document":
        problems.append(f"Bundle.type is {b.get('type')!r}, not 'document'")
    if not (b.get("identifier") or {}).get("value"):
        problems.append("Bundle.identifier is missing")
    if not b.get("timestamp"):
        problems.append("Bundle.timestamp is missing")
    entries = b.get("entry") or []
    if not entries:
        return problems + ["the Bundle has no entries"]
    urls = [e.get("fullUrl", "") for e in entries]
    for u in urls:
        if not UUID.match(u):
            problems.append(f"fullUrl {u!r} is not a urn:uuid:")
    if len(set(urls)) != len(urls):
        problems.append("two entries share a fullUrl")
    by_url = {e.get("fullUrl"): e.get("resource", {}) for e in entries}
    comp = entries[0].get("resource", {})
    if comp.get("resourceType") != "Composition":
        problems.append("the first entry is not the Composition (bdl-ips-1)")
        return problems
    if "60591-5" not in loinc(comp.get("type")):
        problems.append("Composition.type is not LOINC 60591-5")
    subject = (comp.get("subject") or {}).get("reference")
    if by_url.get(subject, {}).get("resourceType") != "Patient":
        problems.append("Composition.subject is not a Patient of the Bundle")
    seen = set()
    for s in comp.get("section") or []:
        codes = loinc(s.get("code"))
        if not codes:
            problems.append(f"section {s.get('title')!r} has no LOINC code")
            continue
        code = next(iter(codes))
        seen.add(code)
        if code not in REQUIRED and code not in OPTIONAL:
            problems.append(f"section {code} is not an IPS section")
        has_entries = bool(s.get("entry"))
        if has_entries and s.get("emptyReason"):
            problems.append(f"section {code} has entries and an emptyReason")
        if not s.get("text", {}).get("div"):
            problems.append(f"section {code} has no narrative")
        if code in REQUIRED and not has_entries and not s.get("emptyReason"):
            problems.append(f"required section {code} has neither entries nor an emptyReason")
    for code, name in REQUIRED.items():
        if code not in seen:
            problems.append(f"required section {code} ({name}) is missing")
    for r in references(b, []):
        if r not in by_url:
            problems.append(f"reference {r!r} does not resolve inside the Bundle")
    return problems


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)
    from fhir.resources.R4B.bundle import Bundle
    try:
        Bundle.model_validate(data)
    except Exception as e:  # the library's own report, as it gives it
        print(f"fhir.resources (R4B) refused the Bundle:\n{e}", file=sys.stderr)
        return 1
    problems = invariants(data)
    if problems:
        print("IPS invariants broken:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"valid: {len(data['entry'])} resources, FHIR R4B and IPS invariants")
    return 0


if __name__ == "__main__":
    sys.exit(main())
