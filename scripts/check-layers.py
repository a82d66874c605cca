#!/usr/bin/env python3
"""Checks that csm-core's top-level modules import only from layers below their own.

The layers are the `layers` block of ARCHITECTURE.md, top layer first, one line a layer. Every
`crate::NAME` a module names outside its test modules is an import of NAME; it must be in a
lower layer (so no two modules import each other, directly or around a loop), and every module
must stand in some layer. Prints each break with the file and line; exits 1 if there is any.

Usage: scripts/check-layers.py [--root DIR]   (default: the repository this script is in)"""

import argparse
import bisect
import os
import re
import sys


def layers_of(architecture):
    """The layers of ARCHITECTURE.md's `layers` block, bottom layer first: lists of names."""
    text = open(architecture, encoding="utf-8").read()
    block = re.search(r"^```layers\n(.*?)^```", text, re.M | re.S)
    if not block:
        sys.exit(f"{architecture} has no ```layers block: it lists csm-core's layers, top first")
    lines = [line.split("#")[0].split() for line in block.group(1).splitlines()]
    return [names for names in reversed(lines) if names]


def code_lines(path):
    """A file's lines outside `#[cfg(test)]` items and comments, with their numbers."""
    lines = open(path, encoding="utf-8").read().splitlines()
    out, depth_at_test, depth = [], None, 0
    pending_test = False
    for number, line in enumerate(lines, 1):
        code = re.sub(r"//.*", "", line)
        if depth_at_test is None and re.match(r"\s*#\[cfg\(test\)\]", code):
            pending_test = True
            continue
        opens, closes = code.count("{"), code.count("}")
        if pending_test and opens:
            depth_at_test, pending_test = depth, False
        elif pending_test and code.strip().endswith(";"):
            pending_test = False  # `#[cfg(test)] mod tests;`: the file is skipped below
            continue
        if depth_at_test is None:
            out.append((number, code))
        depth += opens - closes
        if depth_at_test is not None and depth <= depth_at_test:
            depth_at_test = None
    return out


def test_files(src):
    """Files that are test modules of their own (`#[cfg(test)] mod tests;`)."""
    skipped = set()
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            text = open(os.path.join(root, name), encoding="utf-8").read()
            for module in re.findall(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text):
                folder = root if name in ("mod.rs", "lib.rs") else os.path.join(root, name[:-3])
                skipped.add(os.path.join(folder, module + ".rs"))
                skipped.add(os.path.join(folder, module, "mod.rs"))
    return skipped


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = parser.parse_args()
    src = os.path.join(args.root, "csm-core", "src")
    layers = layers_of(os.path.join(args.root, "ARCHITECTURE.md"))
    rank = {name: index for index, names in enumerate(layers) for name in names}
    modules = sorted({os.path.relpath(os.path.join(root, f), src).split(os.sep)[0].removesuffix(".rs")
                      for root, _, files in os.walk(src) for f in files if f.endswith(".rs")} - {"lib"})
    problems = [f"csm-core/src/{m}: the module stands in no layer of ARCHITECTURE.md; add it to the layers block"
                for m in modules if m not in rank]
    problems += [f"ARCHITECTURE.md names {name!r} in its layers, but csm-core has no such module"
                 for name in rank if name not in modules]
    skipped = test_files(src)
    for root, _, files in os.walk(src):
        for name in sorted(files):
            path = os.path.join(root, name)
            if not name.endswith(".rs") or path in skipped:
                continue
            module = os.path.relpath(path, src).split(os.sep)[0].removesuffix(".rs")
            if module == "lib" or module not in rank:
                continue
            lines = code_lines(path)
            text = "\n".join(code for _, code in lines)
            starts = [0]
            for _, code in lines:
                starts.append(starts[-1] + len(code) + 1)
            named = [(m.start(), m.group(1)) for m in re.finditer(r"\bcrate::(\w+)", text)]
            for group in re.finditer(r"\bcrate::\{([^}]*)\}", text, re.S):
                named += [(group.start(), name) for name in re.findall(r"(?:^|,)\s*(\w+)", group.group(1))]
            for at, other in sorted(set(named)):
                if other == module or other not in rank or rank[other] < rank[module]:
                    continue
                number = lines[bisect.bisect_right(starts, at) - 1][0]
                where = "the same layer as" if rank[other] == rank[module] else "a layer above"
                problems.append(
                    f"{os.path.relpath(path, args.root)}:{number}: {module} imports crate::{other}, "
                    f"which is in {where} {module}; a module imports only from layers below its own "
                    f"(move the item it needs down, or the code that needs it up; ARCHITECTURE.md)")
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} layer break(s)")
        sys.exit(1)
    print(f"csm-core: {len(modules)} modules in {len(layers)} layers, every import points down")


if __name__ == "__main__":
    main()
