"""guardbot's benchmarks: `python -m bench` runs them and prints one table.

Not tests: nothing here is collected by pytest (testpaths is tests/), and no figure fails a
build. Each figure is printed beside a reference measured in the same run, because the
machines these run on are noisy and only the ratio travels.
"""
