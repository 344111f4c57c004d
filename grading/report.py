"""Writing the outputs: per-student files as results arrive, grades.csv and the summary at the end."""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import tempfile


def atomic_write(path: str, data, mode: str = "w") -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".tmp-")
    try:
        with os.fdopen(fd, mode + ("b" if isinstance(data, bytes) else ""),
                       **({} if isinstance(data, bytes) else {"encoding": "utf-8"})) as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def feedback_paths(out: str, student: str, notebooks: list[str]) -> dict:
    if len(notebooks) == 1:
        return {notebooks[0]: os.path.join(out, "feedback", student + ".html")}
    return {nb: os.path.join(out, "feedback", "%s.%s.html" % (student, nb)) for nb in notebooks}


def error_feedback(student: str, assignment: str, status: str, problems: list) -> str:
    items = "".join("<li>%s</li>" % html.escape(p) for p in problems)
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>%s: %s</title></head><body>"
            "<h1>%s</h1><p><strong>Your submission could not be graded.</strong></p>"
            "<p>%s</p>%s<p>Please contact your instructor.</p></body></html>"
            % (html.escape(assignment), html.escape(student), html.escape(assignment),
               html.escape(status), ("<ul>%s</ul>" % items) if items else ""))


def write_result(out: str, assignment: str, notebooks: list[str], result: dict) -> None:
    """Per-student outputs; the state file is written last and marks the result as complete."""
    student = result["student"]
    paths = feedback_paths(out, student, notebooks)
    fb = result.get("feedback") or {}
    for nb, path in paths.items():
        if nb in fb:
            atomic_write(path, fb[nb])
        else:
            atomic_write(path, error_feedback(student, assignment, result["status"], result.get("problems", [])))
    for nb, text in (result.get("autograded") or {}).items():  # nbgrader's layout, for formgrader
        atomic_write(os.path.join(out, "autograded", student, assignment, nb + ".ipynb"), text)
    state = {k: v for k, v in result.items() if k not in ("feedback", "autograded")}
    atomic_write(state_path(out, student), json.dumps(state, indent=1, sort_keys=True))


def state_path(out: str, student: str) -> str:
    return os.path.join(out, ".grading", "state", student + ".json")


def load_state(out: str, student: str) -> dict | None:
    try:
        with open(state_path(out, student), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt(x) -> str:
    if x is None:
        return ""
    return ("%.2f" % x).rstrip("0").rstrip(".") if isinstance(x, float) else str(x)


def write_grades_csv(out: str, columns: list, results: list) -> str:
    path = os.path.join(out, "grades.csv")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student"] + [c["column"] for c in columns] + ["total", "max", "status", "problems", "files"])
    for r in sorted(results, key=lambda r: r["student"]):
        scores = r.get("scores") or {}
        w.writerow([r["student"]] + [fmt(scores.get(c["column"])) for c in columns]
                   + [fmt(float(r.get("total") or 0.0)), fmt(r.get("max")), r["status"],
                      " | ".join(r.get("problems", [])), " ".join(r.get("files", []))])
    atomic_write(path, buf.getvalue())
    return path


def write_summary(out: str, assignment: str, columns: list, max_score: float, results: list) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    graded = [r for r in results if not r["status"].startswith("error")]
    totals = [float(r.get("total") or 0) for r in graded]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    bins = max(5, min(20, int(max_score) + 1 if max_score else 10))
    ax.hist(totals, bins=bins, range=(0, max_score or 1), color="#4472c4", edgecolor="white")
    ax.set_xlabel("total score (max %g)" % max_score)
    ax.set_ylabel("students")
    ax.set_title("%s: %d graded, %d could not be graded" % (assignment, len(graded), len(results) - len(graded)))
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    atomic_write(os.path.join(out, "summary.png"), png.getvalue())

    rows = []
    for c in columns:
        vals = [(r.get("scores") or {}).get(c["column"]) for r in graded]
        failed = sum(1 for v in vals if v is not None and v < c["points"])
        missing = sum(1 for v in vals if v is None)
        rows.append((c["column"], c["points"], "hidden" if c["hidden"] else "visible", failed, missing, len(vals)))
    flagged = [r for r in results if r["status"] != "graded"]
    mean = sum(totals) / len(totals) if totals else 0.0
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>%s grading summary</title>"
             "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;border-bottom:1px solid #ddd}"
             "th{text-align:left}</style></head><body>" % html.escape(assignment),
             "<h1>%s</h1>" % html.escape(assignment),
             "<p>%d submissions, %d graded, mean %.2f / %g.</p>" % (len(results), len(graded), mean, max_score),
             "<img alt='score histogram' src='data:image/png;base64,%s'>" % base64.b64encode(png.getvalue()).decode(),
             "<h2>Tests</h2><table><tr><th>test</th><th>points</th><th>kind</th><th>students who failed it</th>"
             "<th>not graded</th><th>of</th></tr>"]
    for name, pts, kind, failed, missing, n in rows:
        parts.append("<tr><td>%s</td><td>%g</td><td>%s</td><td>%d</td><td>%d</td><td>%d</td></tr>"
                     % (html.escape(name), pts, kind, failed, missing, n))
    parts.append("</table><h2>Submissions to look at (%d)</h2><table><tr><th>student</th><th>status</th>"
                 "<th>total</th></tr>" % len(flagged))
    for r in sorted(flagged, key=lambda r: r["student"]):
        parts.append("<tr><td>%s</td><td>%s</td><td>%s</td></tr>"
                     % (html.escape(r["student"]), html.escape(r["status"]), fmt(float(r.get("total") or 0))))
    parts.append("</table><p>Details per student: grading.log and grades.csv (column problems).</p></body></html>")
    path = os.path.join(out, "summary.html")
    atomic_write(path, "\n".join(parts))
    return path
