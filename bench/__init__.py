"""pytest-benchmark suites of the hot paths (`make bench`), and `bench.report` that turns their JSON into report.md."""
