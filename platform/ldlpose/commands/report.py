"""Write a search's report: one self-contained HTML file and a Markdown version of its tables.

SEARCH is the search's name (its MLflow experiment) or its search-space YAML, as given to
`ldlpose search` (its search.name is used). The report holds the space, the budget planned and
spent, every trial's validation and test scores with the protocol and data hash they were
measured on, each method's mean and 95% interval where confirmation ran, the champion and its
lineage, and the search run's figures embedded in the page: it opens offline and fetches nothing.
Everything is read from the MLflow store the search logged to.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("search", metavar="SEARCH", help="search name, or its search-space YAML")
    parser.add_argument("--out", type=Path, help="the HTML file to write (default: <search>-report.html in the "
                                                 "working directory); the Markdown goes beside it as .md")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="with a YAML: the --set overrides the search ran with (e.g. search.name=...)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                                               "else sqlite:///mlflow.db in the working directory)")


def search_name(given: str, overrides: list[str]) -> str:
    """The search's name: ``given`` itself, or the name of the search-space YAML it names."""
    if given.endswith((".yaml", ".yml")) or Path(given).is_file():
        from ldlpose.search.space import load_search_space

        return load_search_space(given, overrides).name
    return given


def run(args: argparse.Namespace) -> int:
    from ldlpose.report.document import to_html, to_markdown
    from ldlpose.report.search_report import document
    from ldlpose.search.story import tell
    from ldlpose.tracking import read_search, resolve_tracking_uri

    name = search_name(args.search, args.overrides)
    record = read_search(resolve_tracking_uri(args.tracking_uri), name)
    written = document(tell(record), record)
    html_file = args.out or Path(f"{name.replace('/', '_')}-report.html")
    html_file.parent.mkdir(parents=True, exist_ok=True)
    html_file.write_text(to_html(written))
    markdown_file = html_file.with_suffix(".md")
    markdown_file.write_text(to_markdown(written))
    print(f"report of search {name}: {html_file} (open it in a browser; figures embedded) and {markdown_file}")
    return 0
