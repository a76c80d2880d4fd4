"""The journal's reading back: every whole line in order, the torn line a killed run was writing passed over."""

from grape.data.journal_file import JournalFile, read_journal


def test_a_journal_reads_back_what_was_appended_and_passes_over_a_torn_line(tmp_path):
    path = tmp_path / "out.jsonl.journal.jsonl"
    assert read_journal(path) == [] and read_journal(None) == []
    with JournalFile(path) as journal:
        journal.append({"key": "a", "item": 1, "text": "é\n"})
        journal.append({"key": "b", "item": 2})
    with path.open("a", encoding="utf-8") as handle:
        handle.write('[1, 2]\n{"key": "a", "item": 3, "te')  # a line that is not an entry, then a killed write
    assert read_journal(path) == [{"key": "a", "item": 1, "text": "é\n"}, {"key": "b", "item": 2}]
    with JournalFile(None) as nothing:
        nothing.append({"key": "c"})  # no path: nothing is written
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
