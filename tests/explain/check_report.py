#!/usr/bin/env python3
"""Checks a `moec explain` HTML report in a real browser (Debian's headless chromium).

usage: check_report.py REPORT.html OUTDIR

Loads the report offline, dumps the DOM chromium built and checks it: every section of
docs/explain.md ("The HTML report"), the pipeline table, an <svg> with at least one <rect>
in the memory section, and nothing fetched from elsewhere. Then takes a screenshot
(OUTDIR/explain.png, 1280x4000), decodes it (PNG, 8-bit RGB/RGBA, standard library only)
and checks that the page is not blank. Exits 0 when every check passes, 1 when one fails,
2 on a usage error, and 77 (ctest's SKIP_RETURN_CODE) when chromium is not installed.
"""

import collections
import html.parser
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

SECTIONS = ["summary", "pipeline", "weights", "fusions", "mla", "memory"]
WINDOW = (1280, 4000)
MIN_NON_BACKGROUND = 0.01  # fraction of pixels that differ from the background
MIN_COLORS = 16  # distinct colors on the page
TIMEOUT_S = 120


class Failed(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failed(what)
    print(f"ok: {what}")


class DomFacts(html.parser.HTMLParser):
    """What the checks need from the dumped DOM."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections = []  # section ids in document order
        self.h2_in = set()  # sections holding an <h2>
        self.stack = []  # open elements: (tag, section id it belongs to)
        self.svgs = collections.Counter()  # section -> <svg> count
        self.rects = collections.Counter()  # section -> <rect> inside an <svg>
        self.tables = collections.Counter()  # section -> <table> count
        self.headers = collections.defaultdict(list)  # section -> text of its <th>s
        self.th_text = None
        self.external = []  # src/href attributes pointing elsewhere

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def current_section(self):
        for tag, sec in reversed(self.stack):
            if sec is not None:
                return sec
        return None

    def in_svg(self):
        return any(tag == "svg" for tag, _ in self.stack)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if value and not value.startswith("#") and not value.startswith("data:"):
                self.external.append(f"<{tag} {key}={value!r}>")
        section = None
        if tag == "section" and attrs.get("id"):
            section = attrs["id"]
            self.sections.append(section)
        where = section or self.current_section()
        if tag == "h2" and where:
            self.h2_in.add(where)
        if tag == "svg" and where:
            self.svgs[where] += 1
        if tag == "rect" and where and self.in_svg():
            self.rects[where] += 1
        if tag == "table" and where:
            self.tables[where] += 1
        if tag == "th":
            self.th_text = []
        if tag not in self.VOID:
            self.stack.append((tag, section))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID and self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag == "th" and self.th_text is not None:
            where = self.current_section()
            if where:
                self.headers[where].append("".join(self.th_text).strip())
            self.th_text = None
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if self.th_text is not None:
            self.th_text.append(data)


def chromium(args, user_data_dir):
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", f"--user-data-dir={user_data_dir}"] + args
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise Failed(f"chromium did not finish in {TIMEOUT_S} s: {' '.join(cmd)}")


def decode_png(data):
    """(width, height, channels, rows): 8-bit RGB or RGBA, non-interlaced."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise Failed("screenshot is not a PNG file")
    pos, idat, header = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise Failed("PNG has no IHDR chunk")
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in (2, 6) or interlace != 0:
        raise Failed(f"PNG is bit depth {depth}, color type {color}, interlace {interlace}; "
                     "expected 8-bit RGB (2) or RGBA (6), not interlaced")
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    if len(raw) != height * (stride + 1):
        raise Failed(f"PNG data is {len(raw)} bytes, expected {height * (stride + 1)}")
    rows, prev = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 0:
            pass
        elif kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        else:
            raise Failed(f"PNG row {y} has filter type {kind}")
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def check_dom(report, dom):
    facts = DomFacts()
    facts.feed(dom)
    facts.close()
    for sec in SECTIONS:
        check(sec in facts.sections, f'DOM has <section id="{sec}">')
        check(sec in facts.h2_in, f'section "{sec}" has an <h2>')
    order = [s for s in facts.sections if s in SECTIONS]
    check(order == SECTIONS, f"sections in order: {', '.join(order)}")
    check(facts.tables["pipeline"] >= 1 and "Pass" in facts.headers["pipeline"],
          f"pipeline section has a table with a Pass column ({facts.tables['pipeline']} table(s))")
    check(facts.svgs["memory"] >= 1, f"memory section has an <svg> ({facts.svgs['memory']} chart(s))")
    check(facts.rects["memory"] >= 1,
          f"memory section's charts have <rect>s ({facts.rects['memory']} buffer rectangle(s))")
    check(not facts.external, "no src/href pointing outside the report"
          + (f": {facts.external[:3]}" if facts.external else ""))
    text = report.read_text(encoding="utf-8", errors="replace")
    for needle in ("http://", "https://", "<script src"):
        check(needle not in text, f"report file has no {needle!r}")


def check_screenshot(png_path):
    data = png_path.read_bytes()
    width, height, bpp, rows = decode_png(data)
    check((width, height) == WINDOW, f"screenshot is {width}x{height} ({len(data)} bytes)")
    colors = collections.Counter()
    for row in rows:
        if bpp == 3:
            colors.update(row[i:i + 3] for i in range(0, len(row), 3))
        else:
            colors.update(row[i:i + 3] for i in range(0, len(row), 4))
    background, count = colors.most_common(1)[0]
    total = width * height
    differ = (total - count) / total
    check(differ >= MIN_NON_BACKGROUND,
          f"{differ:.1%} of pixels differ from the background #{background.hex()} "
          f"(at least {MIN_NON_BACKGROUND:.0%})")
    check(len(colors) >= MIN_COLORS, f"{len(colors)} distinct colors (at least {MIN_COLORS})")


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    report, outdir = pathlib.Path(argv[1]).resolve(), pathlib.Path(argv[2])
    if shutil.which("chromium") is None:
        print("SKIP: chromium not installed")
        return 77
    if not report.is_file():
        print(f"FAIL: no report at {report}", file=sys.stderr)
        return 1
    outdir.mkdir(parents=True, exist_ok=True)
    png = (outdir / "explain.png").resolve()
    if png.exists():
        png.unlink()
    try:
        with tempfile.TemporaryDirectory(prefix="check_report.") as profile:
            dumped = chromium(["--dump-dom", report.as_uri()], profile)
            dom = dumped.stdout.decode("utf-8", errors="replace")
            check(dumped.returncode == 0 and "<section" in dom,
                  f"chromium --dump-dom loaded {report.name} (exit {dumped.returncode}, "
                  f"{len(dom)} characters)")
            (outdir / "explain.dom.html").write_text(dom, encoding="utf-8")
            check_dom(report, dom)
            shot = chromium([f"--screenshot={png}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                             report.as_uri()], profile)
            check(shot.returncode == 0 and png.is_file(),
                  f"chromium --screenshot wrote {png} (exit {shot.returncode})")
        check_screenshot(png)
    except Failed as failure:
        print(f"FAIL: {failure}", file=sys.stderr)
        return 1
    print(f"PASS: {report} (screenshot: {png})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
