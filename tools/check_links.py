#!/usr/bin/env python3
"""Every link in the repository's Markdown stays inside the repository and resolves.

For each .md file (hidden folders and build output left out) it reads the links a reader can follow:
[text](target), [text]: target, <scheme:...> and bare URLs in prose, <a href="..."> (not code spans or
code blocks). It fails, naming the file and line, on:

- a link that leaves the repository (any URL with a scheme: http, https, mailto, ...). Name RFCs and
  standards in plain text instead;
- a relative link to a file or folder that does not exist;
- an anchor (#part) that no heading of the target file makes (GitHub's rule: lower case, punctuation
  dropped, spaces to hyphens, -1, -2 for repeats) and no <a id/name="..."> declares, or an anchor into a
  file that is not Markdown.

    tools/check_links.py              # the repository this file is in; exit 1 on any broken link
    tools/check_links.py --self-test  # the checker on a small tree of good and broken links
"""
import argparse, os, re, sys, tempfile, unicodedata

SKIP_DIRS = {"node_modules"}
FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*)>")
BARE_URL = re.compile(r"(?<![\w/(<\[])((?:https?|ftp)://[^\s<>)\]]+|www\.[A-Za-z0-9-]+\.[^\s<>)\]]+)")
HREF = re.compile(r"<a\s[^>]*?href\s*=\s*[\"']([^\"']*)[\"']", re.IGNORECASE)
ANCHOR_DECL = re.compile(r"<a\s[^>]*?(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def markdown_files(root):
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(".md"):
                yield os.path.join(folder, name)


def prose_lines(text):
    """(line number, line) of the lines outside fenced code blocks, with code spans blanked."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        opened = FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        yield number, blank_code_spans(line)


def blank_code_spans(line):
    out, i = [], 0
    while i < len(line):
        if line[i] == "`":
            run = len(line[i:]) - len(line[i:].lstrip("`"))
            ticks = line[i:i + run]
            end = line.find(ticks, i + run)
            if end == -1:
                out.append(line[i:])
                break
            out.append(" " * (end + run - i))
            i = end + run
        else:
            out.append(line[i])
            i += 1
    return "".join(out)


def slug(heading):
    """GitHub's anchor for a heading's text (github-slugger)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "")
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"(\*\*|__|\*)", "", text)
    text = text.strip().lower()
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in " -_" or category[0] in "LN" or category in ("Mn", "Mc", "Me", "Pc"):
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


def anchors_of(path, cache):
    if path not in cache:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        found, seen = set(), {}
        previous = None
        for _, line in prose_lines(text):
            match = HEADING.match(line)
            heading = match.group(2) if match else None
            if heading is None and previous and previous.strip() and SETEXT.match(line) \
                    and not previous.lstrip().startswith(("-", "*", "|", ">")):
                heading = previous.strip()
            if heading is not None:
                base = slug(heading)
                count = seen.get(base, 0)
                seen[base] = count + 1
                found.add(base if count == 0 else f"{base}-{count}")
            found.update(ANCHOR_DECL.findall(line))
            previous = line
        cache[path] = found
    return cache[path]


def links_in(line):
    """The targets of a line's links, each once."""
    found = []
    for pattern in (INLINE_LINK, REFERENCE_DEF, AUTOLINK, HREF):
        found += [match.group(1) for match in pattern.finditer(line)]
    without = REFERENCE_DEF.sub("", INLINE_LINK.sub("", AUTOLINK.sub("", HREF.sub("", line))))
    found += [match.group(1) for match in BARE_URL.finditer(without)]
    return list(dict.fromkeys(found))


def check(root):
    root = os.path.abspath(root)
    problems, cache, count = [], {}, 0
    for path in markdown_files(root):
        shown = os.path.relpath(path, root)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for number, line in prose_lines(text):
            for target in links_in(line):
                count += 1
                where = f"{shown}:{number}"
                if SCHEME.match(target) or target.startswith("www.") or target.startswith("//"):
                    problems.append(f"{where}: {target} leaves the repository: link to a file here, or name it in plain text")
                    continue
                file_part, _, anchor = target.partition("#")
                if file_part == "":
                    resolved = path
                elif file_part.startswith("/"):
                    resolved = os.path.normpath(os.path.join(root, file_part.lstrip("/")))
                else:
                    resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part))
                if not (resolved == root or resolved.startswith(root + os.sep)):
                    problems.append(f"{where}: {target} points outside the repository")
                    continue
                if not os.path.exists(resolved):
                    problems.append(f"{where}: {target}: no file {os.path.relpath(resolved, root)}")
                    continue
                if anchor:
                    if not resolved.endswith(".md") or os.path.isdir(resolved):
                        problems.append(f"{where}: {target}: an anchor into {os.path.relpath(resolved, root)}, which is not Markdown")
                    elif anchor not in anchors_of(resolved, cache):
                        problems.append(f"{where}: {target}: {os.path.relpath(resolved, root)} has no heading or anchor '#{anchor}'")
    return problems, count


SELF_TEST = {
    "README.md": "# Top\n\n## The VM test: evdev against a real kernel\n\nSee [vm](#the-vm-test-evdev-against-a-real-kernel),\n"
                 "[docs](docs/a.md#part-two), [folder](docs/), [self](#top), `[code](missing.md)`.\n\n"
                 "```\n[in a block](missing.md) https://example.com\n```\n",
    "docs/a.md": "# A\n\n## Part two\n\n## Part two\n\n<a id=\"kept\"></a>\n\n[back](../README.md#top) [dup](#part-two-1) [declared](#kept)\n",
    "docs/bad.md": "# Bad\n\n[gone](missing.md)\n[no anchor](a.md#part-three)\n[web](https://example.com/x)\n"
                   "see http://example.org for more\n[ref]: https://example.net\n[up](../../outside.md)\n"
                   "[swift anchor](../code.swift#L3)\n<mailto:someone@example.com>\n",
    "code.swift": "let x = 1\n",
}


def self_test():
    with tempfile.TemporaryDirectory() as root:
        for name, text in SELF_TEST.items():
            os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
            with open(os.path.join(root, name), "w", encoding="utf-8") as f:
                f.write(text)
        problems, _ = check(root)
    expected = [
        ("docs/bad.md:3", "no file docs/missing.md"),
        ("docs/bad.md:4", "has no heading or anchor '#part-three'"),
        ("docs/bad.md:5", "https://example.com/x leaves the repository"),
        ("docs/bad.md:6", "http://example.org leaves the repository"),
        ("docs/bad.md:7", "https://example.net leaves the repository"),
        ("docs/bad.md:8", "points outside the repository"),
        ("docs/bad.md:9", "which is not Markdown"),
        ("docs/bad.md:10", "mailto:someone@example.com leaves the repository"),
    ]
    failures = []
    for where, what in expected:
        if not any(p.startswith(where + ":") and what in p for p in problems):
            failures.append(f"not reported: {where} ... {what}")
    for p in problems:
        if not p.startswith("docs/bad.md:"):
            failures.append(f"reported wrongly: {p}")
    if len(problems) != len(expected):
        failures.append(f"{len(problems)} problems reported, {len(expected)} expected: {problems}")
    for heading, anchor in [("The VM test: evdev against a real kernel", "the-vm-test-evdev-against-a-real-kernel"),
                            ("`devicesim load`: many devices", "devicesim-load-many-devices"),
                            ("Alarm → ack, p99 (µs)", "alarm--ack-p99-µs"),
                            ("[Links](x.md) and **bold**", "links-and-bold")]:
        if slug(heading) != anchor:
            failures.append(f"slug({heading!r}) = {slug(heading)!r}, expected {anchor!r}")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        help="the repository (default: the one this script is in)")
    parser.add_argument("--self-test", action="store_true", help="check the checker on good and broken links")
    args = parser.parse_args()
    if args.self_test:
        failures = self_test()
        for f in failures:
            print(f"check_links self-test: {f}", file=sys.stderr)
        print("check_links self-test: " + ("FAILED" if failures else "passed"))
        return 1 if failures else 0
    problems, count = check(args.root)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check_links: {len(problems)} broken of {count} links", file=sys.stderr)
        return 1
    print(f"check_links: {count} links, all inside the repository and resolving")
    return 0


if __name__ == "__main__":
    sys.exit(main())
