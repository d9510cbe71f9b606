"""The name table: Docker's validation and texts, random names, reservations that never collide under races."""
from __future__ import annotations

import itertools
import re
import threading

import pytest

from vic_ref import errors
from vic_ref.portlayer import names
from vic_ref.portlayer.names import InvalidName, NameConflict, NameTable

ID_A, ID_B = "a" * 64, "b" * 64


@pytest.mark.parametrize("name", ["web", "a1", "My_App.v2-x", "0x", "/web"])
def test_valid_names(name):
    assert names.validate(name) == name.lstrip("/")


@pytest.mark.parametrize("name", ["", "a", "-web", "_web", ".web", "we b", "web!", "wéb", "//web", "a/b"])
def test_invalid_names_have_dockers_text(name):
    with pytest.raises(InvalidName) as info:
        names.validate(name)
    assert str(info.value) == f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    assert isinstance(info.value, errors.InvalidArgument)


def test_reserve_and_conflict_text():
    table = NameTable()
    assert table.reserve("/web", ID_A) == "web"
    assert table.reserve("web", ID_A) == "web"  # the holder again: fine
    with pytest.raises(NameConflict) as info:
        table.reserve("web", ID_B)
    assert str(info.value) == (f'Conflict. The container name "/web" is already in use by container "{ID_A}". You '
                               "have to remove (or rename) that container to be able to reuse that name.")
    assert isinstance(info.value, errors.Conflict) and info.value.holder == ID_A
    assert table.holder("/web") == ID_A and "web" in table


def test_release_only_by_holder():
    table = NameTable()
    table.reserve("web", ID_A)
    assert not table.release("web", ID_B)
    assert table.release("web", ID_A)
    assert not table.release("web")
    table.reserve("web", ID_B)
    table.reserve("db", ID_B)
    assert sorted(table.release_all(ID_B)) == ["db", "web"] and len(table) == 0


def test_random_names_look_like_dockers():
    for attempt in range(20):
        name = names.random_name(attempt % 3)
        assert re.fullmatch(r"[a-z]+_[a-z]+\d?", name), name
        assert names.NAME_PATTERN.match(name)
        assert name[-1].isdigit() == (attempt % 3 > 0)
    assert all(w.isalpha() and w.islower() for w in names.ADJECTIVES + names.SURNAMES)
    assert len(set(names.ADJECTIVES)) > 80 and len(set(names.SURNAMES)) > 100


def test_random_names_give_up_after_five_with_vics_text():
    tries = []

    def generator(attempt):
        tries.append(attempt)
        return "same_name"

    table = NameTable(generator)
    assert table.reserve_random(ID_A) == "same_name"
    with pytest.raises(errors.Conflict) as info:
        table.reserve_random(ID_B)
    assert str(info.value) == "attempted random names conflicted with existing containers"
    assert tries == [0, 0, 1, 2, 3, 4]


def test_random_retry_finds_a_free_name():
    counter = itertools.count()
    table = NameTable(lambda attempt: "taken" if next(counter) < 3 else "free")
    table.reserve("taken", ID_A)
    assert table.reserve_random(ID_B) == "free"


def test_races_give_each_name_to_exactly_one():
    table = NameTable()
    winners: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def contend(index: int):
        cid = f"{index:064x}"
        start.wait()
        for name in ("web", "db", "cache"):
            try:
                table.reserve(name, cid)
            except NameConflict:
                continue
            with lock:
                winners.append(name)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(winners) == ["cache", "db", "web"]
