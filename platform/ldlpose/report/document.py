"""A document of sections, notes, tables and figures, written as one self-contained HTML file or as
Markdown (the same tables; figures are named, since a Markdown file cannot carry them).

The HTML page fetches nothing: its style is inline and its figures are PNG data URIs, so it opens
offline, from an e-mail or an archive, exactly as it was written. A document is plain data::

    {"title": str, "notes": [str], "sections": [{"heading": str, "notes": [str],
     "tables": [{"caption": str, "headers": [str], "rows": [[str]], "folded": bool}],
     "figures": [{"name": str, "caption": str, "png": bytes}]}]}
"""

from __future__ import annotations

import base64
import html

__all__ = ["to_html", "to_markdown"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; max-width: 640px; } p.note { color: #444; }
code { font-size: 0.95em; } summary { cursor: pointer; font-weight: 600; margin: 0.8em 0; }
"""


def to_html(document: dict) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(document['title'])}</title>", f"<style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(document['title'])}</h1>"]
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in document.get("notes", [])]
    for section in document["sections"]:
        parts.append(f'<h2 id="{_anchor(section["heading"])}">{html.escape(section["heading"])}</h2>')
        parts += [f'<p class="note">{html.escape(n)}</p>' for n in section.get("notes", [])]
        parts += [_html_table(t) for t in section.get("tables", [])]
        parts += [_html_figure(f) for f in section.get("figures", [])]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _anchor(heading: str) -> str:
    """``#every-trial``: each section can be linked to (and a screenshot can open on it)."""
    return "-".join("".join(c if c.isalnum() else " " for c in heading.lower()).split())


def _html_table(table: dict) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in table["headers"])
    body = "".join("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in table["rows"])
    if table.get("folded"):  # long and rarely read: one click away, no script needed
        summary = f"<summary>{html.escape(table.get('caption') or 'details')} ({len(table['rows'])} rows)</summary>"
        return f"<details>{summary}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></details>"
    caption = f"<caption>{html.escape(table['caption'])}</caption>" if table.get("caption") else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_cell(value) -> str:
    text = str(value)
    numeric = text.replace(".", "", 1).replace("-", "", 1).replace("e", "", 1).isdigit()
    return f'<td class="n">{html.escape(text)}</td>' if numeric else f"<td>{html.escape(text)}</td>"


def _html_figure(figure: dict) -> str:
    data = base64.b64encode(figure["png"]).decode("ascii")
    name = html.escape(figure["name"])
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{name}" title="{name}">'
            f"<figcaption><code>{name}</code>: {html.escape(figure.get('caption', ''))}</figcaption></figure>")


def to_markdown(document: dict) -> str:
    lines = [f"# {document['title']}", ""]
    for note in document.get("notes", []):
        lines += [note, ""]
    for section in document["sections"]:
        lines += [f"## {section['heading']}", ""]
        for note in section.get("notes", []):
            lines += [note, ""]
        for table in section.get("tables", []):
            lines += _markdown_table(table)
        for figure in section.get("figures", []):
            lines.append(f"- figure `{figure['name']}` (in the HTML report): {figure.get('caption', '')}")
        if section.get("figures"):
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _markdown_table(table: dict) -> list[str]:
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [f"**{table['caption']}**", ""] if table.get("caption") else []
    lines.append("| " + " | ".join(cell(h) for h in table["headers"]) + " |")
    lines.append("|" + "|".join("---" for _ in table["headers"]) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in table["rows"]]
    return [*lines, ""]
