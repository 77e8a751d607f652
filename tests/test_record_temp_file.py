"""The record writer's temporary file lies beside the record: the same folder, so the same file
system, so the final rename is atomic (a rename across file systems is a copy that readers can see
half done, or fails with EXDEV)."""
import os

from apbench.results import store


def test_the_temporary_file_is_renamed_from_the_records_own_folder(tmp_path, monkeypatch):
    target = tmp_path / "runs" / "abc123" / "record.json"
    renames = []
    real_replace, real_rename = os.replace, os.rename

    def spy(real):
        def call(src, dst, *a, **k):
            src, dst = os.fspath(src), os.fspath(dst)
            if dst == str(target):  # what the temp file is, at the moment it becomes the record
                renames.append((src, os.stat(src).st_dev, os.stat(os.path.dirname(dst)).st_dev,
                                open(src).read()))
            return real(src, dst, *a, **k)
        return call

    monkeypatch.setattr(os, "replace", spy(real_replace))
    monkeypatch.setattr(os, "rename", spy(real_rename))
    assert store.write_record(target, {"run_id": "abc123", "status": "ok"}) == target

    (src, src_dev, dst_dev, text), = renames  # exactly one rename onto the record
    assert os.path.dirname(src) == str(target.parent) and src != str(target)
    assert src_dev == dst_dev
    assert os.path.basename(src).startswith(".")  # hidden: iter_records and `ls` pass over it
    assert text == target.read_text()  # the complete record was in the temp file before the rename
    assert not os.path.exists(src) and sorted(p.name for p in target.parent.iterdir()) == ["record.json"]
