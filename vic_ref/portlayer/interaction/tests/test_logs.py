from vic_ref.portlayer.interaction import logs

LOG = (b"2025-01-01T00:00:01.5Z stdout one\n"
       b"2025-01-01T00:00:02Z stderr two\n"
       b"raw line\n"
       b"2025-01-01T00:00:03.000000001Z stdout three\n"
       b"2025-01-01T00:00:04Z stdout part")


def test_parse_keeps_partial_line():
    entries, used = logs.parse(LOG)
    assert [e.data for e in entries] == [b"one\n", b"two\n", b"raw line\n", b"three\n"]
    assert [e.stream for e in entries] == [1, 2, 1, 1]
    assert used == LOG.rindex(b"\n") + 1
    entries, used = logs.parse(LOG, final=True)
    assert entries[-1].data == b"part" and used == len(LOG)


def test_select_and_render():
    entries, _ = logs.parse(LOG)
    since = logs.parse_since("1735689601.600000000")
    picked = logs.select(entries, since_ns=since, stderr=False)
    assert [e.data for e in picked] == [b"raw line\n", b"three\n"]
    assert [e.data for e in logs.select(entries, tail=2)] == [b"raw line\n", b"three\n"]
    assert logs.select(entries, tail=0) == []
    assert logs.render(entries[0], True) == b"2025-01-01T00:00:01.500000000Z one\n"
    assert logs.render(entries[2], True) == b"raw line\n"
    assert logs.parse_tail("all") is None and logs.parse_tail("3") == 3


def test_the_tethers_records():
    from vic_ref.tether import logfile as tether_log
    data = tether_log.encode("stdout", b"a\nb\npart", 1_700_000_000_000_000_001) + \
        tether_log.encode("stderr", b"err\n", 1_700_000_000_500_000_000)
    entries, used = logs.parse(data)
    assert used == len(data)
    assert b"".join(e.data for e in entries if e.stream == logs.STDOUT) == b"a\nb\npart"
    assert [e.data for e in entries if e.stream == logs.STDERR] == [b"err\n"]
    assert entries[0].time_ns == 1_700_000_000_000_000_001
    assert logs.parse_line(b"2025-01-01T00:00:01Z stdout F \n").data == b"\n"
