#!/usr/bin/env python3
"""Generate docs/api.md from the public headers: each header's opening comment, then every
function declaration with the comment in front of it (the VNET_API export marker left out). Run from the repository root:
    /usr/bin/python3 docs/gen_api.py > docs/api.md
"""
import glob
import os
import re

ORDER = ["vnet.h", "error.h", "log.h", "types.h", "secret.h", "switch_table.h", "encap.h", "offload.h",
         "port.h", "sys/port.h", "netdev.h", "datapath.h", "model.h", "store.h", "sys/store.h",
         "proto.h", "crypto.h", "token.h", "controller.h", "agent.h", "client.h", "node.h"]


def clean_comment(c):
    c = re.sub(r"^/\*+", "", c.strip())
    c = re.sub(r"\*+/$", "", c)
    lines = [re.sub(r"^\s*\* ?", "", l) for l in c.splitlines()]
    return "\n".join(lines).strip()


def main():
    root = "include/vnet"
    names = [n for n in ORDER if os.path.exists(os.path.join(root, n))]
    names += sorted(os.path.relpath(p, root) for p in glob.glob(root + "/**/*.h", recursive=True)
                    if os.path.relpath(p, root) not in names)
    out = ["# libvnet API reference", "",
           "Generated from the public headers by `docs/gen_api.py`; the headers are the source.",
           "Every fallible function returns 0 or a negative `VNET_E*` code (error.h).", ""]
    for n in names:
        text = open(os.path.join(root, n)).read()
        out.append(f"## `vnet/{n}`")
        out.append("")
        m = re.match(r"\s*(/\*.*?\*/)", text, re.S)
        if m:
            out.append(clean_comment(m.group(1)))
            out.append("")
        # function declarations (ending with ');' at top level) with an optional comment before
        for fm in re.finditer(r"(/\*(?:(?!\*/).)*\*/\s*)?\n(?:VNET_API )?((?:static inline )?[a-z_][\w \*]*\b(vnet_\w+)\s*\([^;{]*\)\s*(?:__attribute__\(\(.*?\)\))?\s*[;{])",
                              text, re.S):
            comment, decl, name = fm.group(1), fm.group(2), fm.group(3)
            decl = re.sub(r"\s+", " ", decl.rstrip("{;").strip())
            out.append(f"### `{name}`")
            out.append("")
            out.append("```c")
            out.append(decl + ";")
            out.append("```")
            if comment:
                out.append("")
                out.append(clean_comment(comment))
            out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
