import hashlib

import pytest

from anshim.matching import (
    CorruptIndexError,
    DuplicateIdError,
    ExactIndex,
    MalformedHashError,
    MatchingError,
    UnknownIdError,
)


def sha(x: str) -> str:
    return hashlib.sha256(x.encode()).hexdigest()


def md5(x: str) -> str:
    return hashlib.md5(x.encode()).hexdigest()


def test_lookup_add_remove_save_load(tmp_path):
    index = ExactIndex("sha256")
    index.add([1, 2, 3], [sha("a"), sha("b"), sha("a")])
    assert index.lookup([sha("a"), sha("b"), sha("c")]) == [[1, 3], [2], []]
    index.save(tmp_path / "exact")
    index.add([4], [sha("c")])
    index.remove([1])
    assert index.lookup([sha("a"), sha("c").upper()]) == [[3], [4]]
    index.save(tmp_path / "exact")
    loaded = ExactIndex.load(tmp_path / "exact")
    assert len(loaded) == 3
    assert loaded.lookup([sha("a"), sha("b"), sha("c")]) == [[3], [2], [4]]
    loaded.remove([4])
    loaded.add([4], [sha("b")])
    assert loaded.lookup([sha("b"), sha("c")]) == [[2, 4], []]


def test_md5():
    index = ExactIndex("md5")
    index.add([9], [md5("x")])
    assert index.lookup([md5("x"), md5("y")]) == [[9], []]
    with pytest.raises(MalformedHashError):
        index.lookup([sha("x")])


def test_errors(tmp_path):
    index = ExactIndex()
    index.add([1], [sha("a")])
    with pytest.raises(DuplicateIdError):
        index.add([1], [sha("b")])
    with pytest.raises(DuplicateIdError):
        index.add([2, 2], [sha("b"), sha("c")])
    with pytest.raises(UnknownIdError):
        index.remove([1, 5])
    assert 1 in index
    with pytest.raises(MalformedHashError, match="#0"):
        index.add([3], ["xyz"])
    with pytest.raises(MatchingError):
        ExactIndex("sha1")
    with pytest.raises(CorruptIndexError):
        ExactIndex.load(tmp_path / "none")
    index.save(tmp_path / "e")
    (tmp_path / "e" / "ids.npy").write_bytes(b"garbage")
    with pytest.raises(CorruptIndexError):
        ExactIndex.load(tmp_path / "e")
