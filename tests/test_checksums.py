"""Fast checksums: remembered for the same bytes, hashed again for anything else."""


def test_a_checksum_is_remembered_across_processes_for_the_same_bytes_only(tmp_path, monkeypatch):
    import os

    from odqa import checksums

    monkeypatch.setenv("ODQA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(checksums, "REMEMBER_MIN_BYTES", 100)
    f = tmp_path / "weights.bin"
    f.write_bytes(b"a" * 1000)
    first = checksums.file_digest(f)
    checksums._digest.cache_clear()                     # as a new process would start

    def no_reading(path, algorithm):
        raise AssertionError(f"{path} hashed again")

    monkeypatch.setattr(checksums, "_hash_file", no_reading)
    assert checksums.file_digest(f) == first            # remembered: not read again
    st = f.stat()
    f.write_bytes(b"b" * 1000)                          # same size, and the old modification time put back
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    monkeypatch.undo()
    monkeypatch.setenv("ODQA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(checksums, "REMEMBER_MIN_BYTES", 100)
    checksums._digest.cache_clear()
    assert checksums.file_digest(f) != first            # the change time moved: hashed again


def test_an_unwritable_memo_still_gives_the_checksum(tmp_path, monkeypatch):
    from odqa import checksums

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("ODQA_CACHE", str(blocker))
    monkeypatch.setattr(checksums, "REMEMBER_MIN_BYTES", 1)
    f = tmp_path / "data.bin"
    f.write_bytes(b"xyz")
    checksums._digest.cache_clear()
    assert checksums.file_digest(f) == checksums._hash_file(str(f), checksums.ALGORITHM)


def test_reread_hashes_the_bytes_even_when_a_checksum_is_remembered(tmp_path, monkeypatch):
    from odqa import checksums

    monkeypatch.setenv("ODQA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(checksums, "REMEMBER_MIN_BYTES", 1)
    f = tmp_path / "postings.npy"
    f.write_bytes(b"1234")
    checksums.file_digest(f)
    reads = []
    real = checksums._hash_file
    monkeypatch.setattr(checksums, "_hash_file", lambda path, alg: reads.append(path) or real(path, alg))
    checksums._digest.cache_clear()
    rec = {"algorithm": checksums.ALGORITHM, "files": {"postings.npy": {"size": 4, "hash": "0" * 32}}}
    assert checksums.problems(tmp_path, rec) and reads == []          # the remembered checksum decides
    assert checksums.problems(tmp_path, rec, reread=True) and reads == [str(f.absolute())]


def test_small_files_are_hashed_each_time_without_a_memo_file(tmp_path, monkeypatch):
    from odqa import checksums

    monkeypatch.setenv("ODQA_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "aliases.json"
    f.write_text("{}")
    checksums._digest.cache_clear()
    checksums.file_digest(f)
    assert not (tmp_path / "cache" / checksums.DIGESTS).exists()
