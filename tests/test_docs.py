"""The results page shows the tables its stored rows give: nothing on it is typed by hand."""
import re
from pathlib import Path

from benchmarks.report import current_rows, format_table, one_percent_table
from benchmarks.store import read_rows

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGE = (DOCS / "results.md").read_text()


def _tables(text):
    """Each block of consecutive table lines in :obj:`text`."""
    blocks, block = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
        elif block:
            blocks.append("\n".join(block))
            block = []
    return blocks


def test_the_one_percent_table_is_the_one_the_stored_rows_give():
    command = re.search(r"python -m benchmarks\.report --folders ([^\n]+?) --out (\S+)", PAGE)
    folders, out = command.group(1).split(), command.group(2)
    rows = [row for folder in folders for row in current_rows(read_rows(DOCS.parent / folder / "linkpred.csv"))]
    table = format_table(one_percent_table(rows))
    assert table in _tables(PAGE)
    assert (DOCS.parent / out / "report.md").read_text().strip() == table


def test_every_table_on_the_page_is_in_a_generated_file():
    generated = "\n".join(path.read_text() for path in (DOCS / "results").glob("*/*.md") if path.name != "README.md")
    for table in _tables(PAGE):
        assert table in generated, table.splitlines()[0]
