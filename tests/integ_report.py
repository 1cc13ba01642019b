"""Integration test of `kiln report` in a real browser: renders the report of a fake night of
search (tests/fake_history.c; with KILN_REVIEW_WORKDIR, a real run's newest run) in headless
Chromium, checks the DOM Chromium built (five charts, a point per candidate by outcome, the
world-model tree with the winner's path, the best-candidates table linking to sources, the
winner's source and diff, the budget), that the file is self-contained, and saves a
screenshot (build dir; KILN_UPDATE_SCREENSHOT=1 also refreshes docs/review-report.png).
Skips (77) when Chromium is not installed (Debian: chromium, chromium-driver)."""
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from integ_review_common import check, cleanup, finish, kiln, kiln_json, skip, workdir  # noqa: E402

CHARTS = ["chart-time", "chart-speedup", "chart-wallclock", "chart-cost", "chart-roofline"]


class Dom(HTMLParser):
    """Collects what the checks need from Chromium's serialized DOM."""

    def __init__(self):
        super().__init__()
        self.ids = set()
        self.circles = {}      # chart id -> [class, ...]
        self.svg = None
        self.rows = []         # best-table rows' data-candidate
        self.on_path = []      # data-node of highlighted tree nodes
        self.tree_nodes = 0
        self.links = []
        self.scripts = 0
        self.external = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "svg":
            self.svg = a.get("id")
        if tag == "circle" and self.svg:
            self.circles.setdefault(self.svg, []).append(a.get("class", ""))
        if tag == "tr" and "best-row" in a.get("class", ""):
            self.rows.append(int(a["data-candidate"]))
        if tag == "g" and "node" in a.get("class", "").split():
            self.tree_nodes += 1
            if "on-path" in a["class"].split():
                self.on_path.append(int(a["data-node"]))
        if tag == "a" and a.get("href", "").startswith("#"):
            self.links.append(a["href"][1:])
        if tag == "script":
            self.scripts += 1
        for k in ("src", "href"):
            if a.get(k, "").startswith(("http:", "https:", "//")):
                self.external.append(a[k])

    def handle_endtag(self, tag):
        if tag == "svg":
            self.svg = None


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def browser(exe, tmp, *args):
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=" +
           os.path.join(tmp, "chromium-profile")] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def render(exe, tmp, html):
    p = browser(exe, tmp, "--dump-dom", "file://" + html)
    check(p.returncode == 0 and "</html>" in p.stdout, "chromium --dump-dom: %s" % p.stderr[-1000:])
    d = Dom()
    d.feed(p.stdout)
    return d


def common_checks(d, ncand):
    for c in CHARTS + ["wm-tree", "best-table", "winner-source", "winner-diff", "budget-table", "legend"]:
        check(c in d.ids, "element #%s in the DOM" % c)
    for c in ("chart-time", "chart-speedup", "chart-roofline"):
        check(len(d.circles.get(c, [])) == ncand, "%s: one point per candidate (%d, want %d)" %
              (c, len(d.circles.get(c, [])), ncand))
    check(d.scripts == 0 and not d.external, "self-contained: no scripts or external links %s" % d.external)
    for target in [l for l in d.links if l.startswith("src-")]:
        check(target in d.ids, "link #%s has a target" % target)


def screenshot(exe, tmp, html, png):
    p = browser(exe, tmp, "--window-size=1280,1900", "--screenshot=" + png, "file://" + html)
    ok = p.returncode == 0 and os.path.exists(png) and os.path.getsize(png) > 20000
    check(ok, "screenshot written: %s" % p.stderr[-500:])
    if ok:
        with open(png, "rb") as f:
            check(f.read(8) == b"\x89PNG\r\n\x1a\n", "screenshot is a PNG")
    return ok


def main():
    exe = chromium()
    if not exe:
        skip("chromium not installed (apt-get install chromium chromium-driver)")
    wd, ids, tmp = workdir()
    own = tmp or __import__("tempfile").mkdtemp(prefix="kiln-report-")
    try:
        html = os.path.join(own, "report.html")
        if ids:
            kiln(wd, "report", "adamw", "-o", html)
            d = render(exe, own, html)
            common_checks(d, ids["ncand_llm"])
            t = d.circles["chart-time"]
            check(sum("passed" in c for c in t) == 8, "8 passed points")
            check(sum("newbest" in c for c in t) == len(ids["bests"]), "new bests ringed")
            for why in ("fail-compile_error", "fail-mismatch", "fail-race", "fail-oob", "fail-unwritten",
                        "fail-timeout"):
                check(any(why in c for c in t), "a point failed by " + why)
            check(d.rows == ids["bests"], "best table rows = the new bests in order: %s" % d.rows)
            check(sorted(d.on_path) == [0, 2, 4, 7], "tree path to the winner: %s" % d.on_path)
            check(d.tree_nodes == 9, "every tree node drawn")
            check(len(d.circles.get("chart-wallclock", [])) == 0, "wall-clock chart: the best line only")
            with open(html) as f:
                raw = f.read()
            check("+#define BLOCK 512" in raw and "Candidate %d" % ids["winner"] in raw, "winner and its diff")
            check("$0.33" in raw, "dollars spent")
            check("per bench size (us)" in raw and "n=16777216: 153.8; n=268435456: 2420" in raw,
                  "the best table gives every bench size's time")
            # the running tuner run: no LLM, no tree edits, still a full page
            html2 = os.path.join(own, "tune.html")
            kiln(wd, "report", ids["run_tune"], "-o", html2)
            common_checks(render(exe, own, html2), ids["ncand_tune"])
            kiln(wd, "report", "adamw", rc=2)
            kiln(wd, "report", "nosuch", "-o", html2, rc=3)
        else:
            runs = kiln_json(wd, "runs") or []
            kiln(wd, "report", runs[0]["id"], "-o", html)
            common_checks(render(exe, own, html), runs[0]["candidates"])
        png = os.path.join(os.environ.get("KILN_BUILD_ROOT", own), "review-report.png")
        if screenshot(exe, own, html, png) and ids and os.environ.get("KILN_UPDATE_SCREENSHOT") == "1":
            shutil.copy(png, os.path.join(os.environ.get("KILN_SOURCE_ROOT", "."), "docs", "review-report.png"))
        print("screenshot:", png)
    finally:
        cleanup(own)
    finish()


main()
