#!/usr/bin/env python3
"""Check libvnet's ABI: the names libvnet.a defines and the symbols libvnet.so exports.

usage: check_abi.py [--expect FILE] NM LIBVNET.A LIBVNET.SO INCLUDE_DIR [--optional NAME ...]

Fails (exit 1, one line per problem) when
  - libvnet.a defines a global symbol that does not start with vnet_;
  - libvnet.a defines a vnet_ (one underscore) symbol that no public header declares with
    VNET_API (an internal: name it vnet__* and declare it in a private header under libvnet/);
  - a public header declares a vnet__ internal;
  - libvnet.so exports a symbol that is not declared with VNET_API in INCLUDE_DIR;
  - a VNET_API declaration is not exported by libvnet.so (not defined, or defined hidden).
    --optional names the ones a build may leave out (vnet_port_xdp_ops without AF_XDP).

With --expect, the problems found must be exactly the lines of FILE (the self-test runs it on a
small library built to break every rule, tests/abi/bad/).

PENDING_HEADERS is the allow-list for headers that other work still has to mark: what they
declare counts as marked. Empty it (and the meson list vnet_sources_unmarked in
libvnet/meson.build) once those headers carry VNET_API.
"""
import re
import subprocess
import sys
from pathlib import Path

PENDING_HEADERS = []

# Defined by the toolchain, not by libvnet's code: the linker's own symbols in a shared object,
# and what the sanitizers add to instrumented objects.
TOOLCHAIN = re.compile(r"^(_init|_fini|_edata|_end|__bss_start|__(asan|odr_asan|ubsan|sancov|lsan|tsan|msan)[\w.]*)$")


def strip_c(text):
    """The C text without comments and preprocessor lines."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    return text


def marked(text):
    """Names declared with VNET_API: the identifier before the first '(' , ';' or '['."""
    return set(m.group(1) for m in re.finditer(r"\bVNET_API\b[^;{}()\[]*?\b([A-Za-z_]\w*)\s*[(;\[]", text))


def declared(text):
    """Every vnet_ function or object a header declares, marked or not."""
    names = set(re.findall(r"\b(vnet_\w+)\s*\(", text))
    names |= set(re.findall(r"\bextern\b[^;{}()]*?\b(vnet_\w+)\s*[;\[]", text))
    return names


def defined(nm, path, dynamic):
    """Global symbols @path defines (nm, POSIX output)."""
    args = [nm, "--defined-only", "--format=posix"] + (["-D"] if dynamic else ["-g"]) + [path]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        f = line.split()
        # "name type [value [size]]"; archive member headers end in ':'
        if len(f) >= 2 and len(f[1]) == 1 and not f[0].endswith(":"):
            if f[1] not in "UwvN" and not TOOLCHAIN.match(f[0]):
                names.add(f[0])
    return names


def main(argv):
    expect = None
    if len(argv) > 2 and argv[1] == "--expect":
        expect = Path(argv[2]).read_text().splitlines()
        argv = argv[:1] + argv[3:]
    if len(argv) < 5:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    nm, static, shared, incdir = argv[1:5]
    optional = set(argv[6:]) if len(argv) > 5 and argv[5] == "--optional" else set()
    a, so = Path(static).name, Path(shared).name
    inc = Path(incdir)
    headers = sorted(p for p in inc.rglob("*.h"))
    if not headers:
        print(f"no headers under {incdir}", file=sys.stderr)
        return 2
    api, pending, mentioned = set(), set(), set()
    for h in headers:
        text = strip_c(h.read_text())
        rel = h.relative_to(inc.parent if inc.name == "vnet" else inc).as_posix()
        api |= marked(text)
        if rel in PENDING_HEADERS:
            pending |= declared(text)
        mentioned |= set(re.findall(r"\b(vnet__\w+)", text))
    allowed = api | pending

    problems = []
    for s in sorted(defined(nm, static, False)):
        if not s.startswith("vnet_"):
            problems.append(f"{a}: global {s} does not start with vnet_")
        elif not s.startswith("vnet__") and s not in allowed:
            problems.append(f"{a}: {s} is not declared with VNET_API in a public header "
                            f"(an internal: rename it vnet__{s[5:]})")
    for s in sorted(mentioned):
        problems.append(f"include: internal {s} is named in a public header")
    exported = defined(nm, shared, True)
    for s in sorted(exported - allowed):
        problems.append(f"{so}: exports {s}, which no public header declares with VNET_API")
    for s in sorted(api - exported - optional):
        problems.append(f"{so}: {s} is declared with VNET_API but not exported")
    for p in problems:
        print(p)
    print(f"{len(exported)} exported, {len(api)} marked VNET_API, {len(pending)} declared in "
          f"unmarked headers {PENDING_HEADERS}: {len(problems)} problem(s)")
    if expect is not None:
        missed = [p for p in expect if p not in problems]
        extra = [p for p in problems if p not in expect]
        for p in missed:
            print(f"self-test: expected problem not reported: {p}")
        for p in extra:
            print(f"self-test: unexpected problem: {p}")
        return 1 if missed or extra else 0
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
