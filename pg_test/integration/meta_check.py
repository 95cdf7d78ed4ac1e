"""Check a PGXN META.json against the PGXN Meta Spec 1.0.0 and against the repository.

Usage: meta_check.py META.json REPO_ROOT
Prints one line per check; exits 1 when any fails. The spec's rules checked here: the required
keys (abstract, license, maintainer, meta-spec, name, provides, version), the types and forms of
every key it defines (terms, semantic versions, version ranges, license names, prereq phases and
relationships, release status, tags, resources), custom keys only as x_/X_. Against the
repository: every provided file exists, and the version is the one Cargo.toml, cli/Cargo.toml,
core/Cargo.toml, the control file and the lowest supported PostgreSQL (Cargo.toml's pgNN features) say.
"""

import json
import os
import re
import sys

REQUIRED = ["abstract", "license", "maintainer", "meta-spec", "name", "provides", "version"]
OPTIONAL = ["description", "generated_by", "no_index", "prereqs", "release_status", "resources", "tags"]
# The license names the spec defines (a list of them, or a {name: URL} object, is also allowed).
LICENSES = {
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd", "freebsd", "gfdl_1_2",
    "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit", "mozilla_1_0",
    "mozilla_1_1", "openssl", "perl_5", "postgresql", "qpl_1_0", "ssleay", "sun", "zlib",
    "open_source", "restricted", "unrestricted", "unknown",
}
PHASES = {"configure", "build", "runtime", "test", "develop"}
RELATIONSHIPS = {"requires", "recommends", "suggests", "conflicts"}
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")
RANGE_PART = re.compile(r"^(==|!=|>=|<=|>|<)?\s*(\S+)$")
TERM = re.compile(r"^[^./\\\s\x00-\x1f\x7f]{2,}$")


class Checker:
    def __init__(self):
        self.failures = 0

    def check(self, what, ok, detail=""):
        print(("  ok    " if ok else "  FAIL  ") + what + ("" if ok or not detail else f": {detail}"))
        if not ok:
            self.failures += 1
        return ok


def is_version_range(value):
    """A prereq version: 0 (any), a semantic version (that or later), or comma-separated clauses."""
    if value == 0 or value == "0":
        return True
    if not isinstance(value, str):
        return False
    for part in value.split(","):
        m = RANGE_PART.match(part.strip())
        if not m or not SEMVER.match(m.group(2)):
            return False
    return True


def toml_version(path):
    """The [package] version of a Cargo.toml (its first `version = "..."` line)."""
    with open(path) as f:
        for line in f:
            m = re.match(r'^version\s*=\s*"([^"]+)"', line)
            if m:
                return m.group(1)
    return None


def validate(meta, root, c):
    for key in REQUIRED:
        c.check(f"required key '{key}' present", key in meta)
    for key in meta:
        c.check(f"key '{key}' is defined by the spec or custom (x_)",
                key in REQUIRED or key in OPTIONAL or re.match(r"^[xX]_.", key) is not None)

    spec = meta.get("meta-spec", {})
    c.check("meta-spec is an object with version 1.0.0", isinstance(spec, dict) and spec.get("version") == "1.0.0",
            repr(spec))
    if isinstance(spec, dict) and "url" in spec:
        c.check("meta-spec url is the spec's", spec["url"] in ("https://pgxn.org/meta/spec.txt", "http://pgxn.org/meta/spec.txt"),
                spec["url"])

    name = meta.get("name")
    c.check("name is a term (2+ characters, no slash, backslash, dot, space or control)",
            isinstance(name, str) and TERM.match(name) is not None, repr(name))
    version = meta.get("version")
    c.check("version is a semantic version", isinstance(version, str) and SEMVER.match(version) is not None, repr(version))
    c.check("abstract is a non-empty string", isinstance(meta.get("abstract"), str) and meta["abstract"].strip() != "")
    if "description" in meta:
        c.check("description is a non-empty string", isinstance(meta["description"], str) and meta["description"].strip() != "")

    maint = meta.get("maintainer")
    c.check("maintainer is a string or a non-empty list of strings",
            (isinstance(maint, str) and maint.strip() != "")
            or (isinstance(maint, list) and maint and all(isinstance(m, str) and m.strip() for m in maint)), repr(maint))

    lic = meta.get("license")
    ok = (isinstance(lic, str) and lic in LICENSES) \
        or (isinstance(lic, list) and lic and all(isinstance(x, str) and x in LICENSES for x in lic)) \
        or (isinstance(lic, dict) and lic and all(isinstance(v, str) and re.match(r"^https?://", v) for v in lic.values()))
    c.check("license is one of the spec's license names (or a list, or name -> URL)", ok, repr(lic))

    provides = meta.get("provides")
    if c.check("provides is a non-empty object", isinstance(provides, dict) and len(provides) > 0, repr(provides)):
        for ext, p in provides.items():
            c.check(f"provides: '{ext}' is a term", TERM.match(ext) is not None)
            if not c.check(f"provides.{ext} is an object with file and version", isinstance(p, dict) and "file" in p and "version" in p, repr(p)):
                continue
            for key in p:
                c.check(f"provides.{ext}.{key} is defined by the spec",
                        key in ("file", "version", "abstract", "docfile") or re.match(r"^[xX]_.", key) is not None)
            c.check(f"provides.{ext}.version is a semantic version", isinstance(p["version"], str) and SEMVER.match(p["version"]) is not None,
                    repr(p["version"]))
            c.check(f"provides.{ext}.file ({p['file']}) exists", isinstance(p["file"], str) and os.path.isfile(os.path.join(root, p["file"])))
            if "docfile" in p:
                c.check(f"provides.{ext}.docfile ({p['docfile']}) exists", os.path.isfile(os.path.join(root, p["docfile"])))
            if "abstract" in p:
                c.check(f"provides.{ext}.abstract is a non-empty string", isinstance(p["abstract"], str) and p["abstract"].strip() != "")

    if "release_status" in meta:
        c.check("release_status is stable, testing or unstable", meta["release_status"] in ("stable", "testing", "unstable"),
                repr(meta["release_status"]))
    if "tags" in meta:
        tags = meta["tags"]
        c.check("tags: a list of distinct strings of 1 to 255 characters",
                isinstance(tags, list) and all(isinstance(t, str) and 0 < len(t) <= 255 for t in tags) and len(set(tags)) == len(tags),
                repr(tags))
    if "prereqs" in meta:
        pre = meta["prereqs"]
        ok = isinstance(pre, dict)
        for phase, rels in (pre.items() if ok else []):
            ok &= phase in PHASES and isinstance(rels, dict)
            for rel, reqs in (rels.items() if isinstance(rels, dict) else []):
                ok &= rel in RELATIONSHIPS and isinstance(reqs, dict) and all(is_version_range(v) for v in reqs.values())
        c.check("prereqs: phases, relationships and version ranges as the spec defines them", bool(ok), repr(pre))
    if "resources" in meta:
        res = meta["resources"]
        ok = isinstance(res, dict) and all(k in ("homepage", "bugtracker", "repository") or k.startswith(("x_", "X_")) for k in res)
        c.check("resources: homepage, bugtracker, repository", ok, repr(res))
    if "no_index" in meta:
        ni = meta["no_index"]
        c.check("no_index: file and directory lists", isinstance(ni, dict) and set(ni) <= {"file", "directory"}, repr(ni))


def cross_check(meta, root, c):
    version = meta.get("version")
    cargo = toml_version(os.path.join(root, "Cargo.toml"))
    c.check(f"version {version} is Cargo.toml's ({cargo})", version == cargo)
    cli = toml_version(os.path.join(root, "cli", "Cargo.toml"))
    c.check(f"version {version} is cli/Cargo.toml's ({cli})", version == cli)
    core = toml_version(os.path.join(root, "core", "Cargo.toml"))
    c.check(f"version {version} is core/Cargo.toml's ({core})", version == core)
    name = meta.get("name")
    control = os.path.join(root, f"{name}.control")
    if c.check(f"{name}.control exists (the extension's name is the distribution's)", os.path.isfile(control)):
        with open(control) as f:
            m = re.search(r"^default_version\s*=\s*'([^']*)'", f.read(), re.M)
        dv = m.group(1) if m else None
        # pgrx writes Cargo.toml's version over @CARGO_VERSION@ when it installs or packages.
        c.check(f"the control file's default_version ({dv}) is {version} or Cargo.toml's (@CARGO_VERSION@)",
                dv in (version, "@CARGO_VERSION@"))
    provided = meta.get("provides", {}).get(name, {})
    c.check(f"provides.{name}.version is the distribution's version", provided.get("version") == version,
            repr(provided.get("version")))
    with open(os.path.join(root, "Cargo.toml")) as f:
        majors = sorted(int(m) for m in re.findall(r"^pg(\d+)\s*=", f.read(), re.M))
    need = meta.get("prereqs", {}).get("runtime", {}).get("requires", {}).get("PostgreSQL")
    c.check(f"runtime requires PostgreSQL {majors[0] if majors else '?'}.0.0, the lowest version Cargo.toml builds for",
            bool(majors) and need == f"{majors[0]}.0.0", repr(need))


def main():
    path, root = sys.argv[1], sys.argv[2]
    c = Checker()
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        c.check(f"{path} is readable JSON", False, str(e))
        return 1
    c.check(f"{path} is a JSON object", isinstance(meta, dict))
    if isinstance(meta, dict):
        validate(meta, root, c)
        cross_check(meta, root, c)
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
