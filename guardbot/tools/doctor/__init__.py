"""`guardbot doctor`: checks a set-up, one line per check (cli), grouped by what is checked."""
