"""The figure registry: a new figure is one entry, and the page numbers, embeds and cross-references it."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
from test_report_tables import recorded

from rnnbench import records
from rnnbench.report import gallery, page
from rnnbench.report.figures import Figure


def made_up():
    """Two models, two seeds each: enough for a leaderboard, a forest plot, and the figures that need no sweep."""
    runs = [
        {"cell": cell, "units": 32, "seed": seed, "accuracy": accuracy}
        for cell, accuracies in (("lstm", (0.90, 0.91)), ("gru", (0.93, 0.92)))
        for seed, accuracy in enumerate(accuracies)
    ]
    return recorded(*runs)


def test_numbers_come_from_the_order_of_the_entries():
    numbers = gallery.numbers()
    assert list(numbers.values()) == list(range(1, len(gallery.FIGURES) + 1))
    assert [entry.key for entry in gallery.FIGURES] == list(numbers)


def test_a_new_figure_is_one_entry_and_the_page_numbers_embeds_and_cross_references_it(store, tmp_path, monkeypatch):
    """An entry put first: it is Figure 1 on the page, its file is cleared when stale, and the page's own references
    to the tuning and literature figures move with the numbers (no hand-written "Figure 8")."""

    def histogram(inputs: gallery.Inputs, folder) -> Figure:
        figure = Figure("histogram", "Test accuracy of every run")
        axis = plt.figure(figsize=(3, 2)).gca()
        axis.hist(inputs.compared.test_accuracy.dropna())
        path = folder / "histogram.png"
        axis.figure.savefig(path)
        plt.close(axis.figure)
        figure.paths.append(path)
        figure.caption = "One bar per range of test accuracy."
        return figure

    monkeypatch.setattr(gallery, "FIGURES", [gallery.Entry("histogram", histogram), *gallery.FIGURES])
    monkeypatch.setattr(records, "read", lambda experiment, curves=True: made_up())
    (tmp_path / "figures").mkdir()
    stale = tmp_path / "figures" / "histogram.png"
    stale.write_bytes(b"stale")

    built = page.build_report("made-up", tmp_path / "index.html", ui_url="http://127.0.0.1:5000")
    html = built.page.read_text()
    numbers = gallery.numbers()
    assert numbers["histogram"] == 1 and numbers["tuning"] == len(gallery.FIGURES) - 1
    assert "Figure 1. Test accuracy of every run.</b>" in html
    assert built.figures[0].key == "histogram" and stale.read_bytes().startswith(b"\x89PNG")  # redrawn, not stale
    assert f"Figure {numbers['published']} draws, with their sources" in html  # the footer's reference, moved
    template = (Path(page.__file__).parent / "templates" / "report.html.j2").read_text()
    assert not re.search(r"Figure \d", template)  # every other reference follows the numbers too


@pytest.mark.parametrize("name", ["landscape-model.dropout.png", "best_model_digits.png", "curves.png"])
def test_every_entrys_files_count_as_its_own(name, tmp_path):
    assert gallery.is_figure_file(tmp_path / name)
    assert not gallery.is_figure_file(tmp_path / "holiday.png")
