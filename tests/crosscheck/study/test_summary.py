"""How the study reports its targets: measured ones first, the unmeasured collapsed into one line at the
end, what ``--quick`` covers, and what a NOT MET target means (a speed goal; the exit status stays 0)."""

from crosscheck.study import names
from crosscheck.study.outputs import markdown
from crosscheck.study.summary import limit_text, markdown_lines, terminal_lines, unmeasured_names
from crosscheck.study.target_kinds import Ratio, evaluate

TARGETS = [
    Ratio("unmeasured a / b", names.PER_HEAD, "a", "b", 1.0, {"rows": 2048}),
    Ratio("fast / slow", names.BIAS, "fast", "slow", 1.05),
    Ratio("slow / fast", names.BIAS, "slow", "fast", 1.05),
    Ratio("unmeasured c / d", names.POOLED, "c", "d", 30, {"length": 2048}, at_least=True),
]
RECORDS = [
    {"study": names.BIAS, "config": "(64, 8)→8", "impl": "fast", "median_s": 1.0, "spread_s": 0.1},
    {"study": names.BIAS, "config": "(64, 8)→8", "impl": "slow", "median_s": 2.0, "spread_s": 0.1},
]


def _goals() -> list[dict]:
    goals = evaluate(TARGETS, RECORDS)
    assert [g["met"] for g in goals] == [None, True, False, None]  # the table's order: mixed
    return goals


def test_the_terminal_lists_measured_targets_first_and_the_unmeasured_in_one_line_at_the_end():
    lines = terminal_lines(_goals(), quick=False)
    rows = [line for line in lines if line.lstrip().startswith(("met", "NOT MET"))]
    assert [row.split()[0] for row in rows] == ["met", "NOT"]
    unmeasured = [line for line in lines if line.startswith("not measured")]
    assert unmeasured == ["not measured (2): unmeasured a / b; unmeasured c / d"]
    assert lines.index(unmeasured[0]) > max(lines.index(row) for row in rows)


def test_a_not_met_target_is_explained_as_a_speed_goal_not_a_failed_check():
    text = "\n".join(terminal_lines(_goals(), quick=False))
    assert "1 NOT MET: each is a speed goal" in text
    assert "not a correctness failure" in text and "exit status 1" in text
    met_only = [g for g in _goals() if g["met"] is not False]
    assert "speed goal" not in "\n".join(terminal_lines(met_only, quick=False))


def test_quick_mode_says_what_it_measures_before_anything_else():
    lines = terminal_lines(_goals(), quick=True)
    assert lines[0].startswith("quick mode: every study once at small sizes (per-head: heads 4, 8")
    assert "run without --quick" in lines[0]
    assert lines[2] == "targets measured in this run: 2 of 4 (1 met, 1 NOT MET)"
    assert not any(line.startswith("quick mode") for line in terminal_lines(_goals(), quick=False))


def test_study_md_starts_its_targets_with_the_measured_table_and_ends_with_the_unmeasured():
    text = markdown({"command": "crosscheck study --quick"}, RECORDS, _goals(), [], quick=True)
    section = text[text.index("## Targets") : text.index("## Roofline of this run")]
    assert section.index("Quick mode:") < section.index("| target |") < section.index("Not measured")
    table = [line for line in section.splitlines() if line.startswith("| ") and "target |" not in line]
    assert [line.split(" | ")[-1] for line in table] == ["yes |", "**NOT MET** |"]
    assert "Not measured in this run (2): unmeasured a / b; unmeasured c / d." in section
    assert "not a correctness failure" in section


def test_unmeasured_targets_collapse_per_target_with_their_number_of_shapes():
    shapes = [Ratio("at three shapes", names.PER_HEAD, "a", "b", 1.0, {"heads": h}) for h in (1, 2, 3)]
    assert unmeasured_names(evaluate(shapes, [])) == ["at three shapes (3 shapes)"]
    older = [{"target": "x / y at (not measured)", "met": None}]  # written before goals had a name
    assert unmeasured_names(older) == ["x / y"]


def test_the_limit_says_which_side_meets_it():
    goals = _goals()
    assert limit_text(goals[1]) == "≤ 1.05" and limit_text(goals[3]) == "≥ 30"
    assert "| fast / slow at (64, 8)→8 | 0.5 | ≤ 1.05 | yes |" in markdown_lines(goals, quick=False)
