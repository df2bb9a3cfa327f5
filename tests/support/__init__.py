"""Helpers the test suites share; no tests and no fixtures here (fixtures live in the
conftest.py files, and no test module imports from another test module). Each module's
docstring says what it holds; among them:

- homeserver: a real Synapse with guardbot registered (`running_homeserver`, `Homeserver`),
  guardbot as a real process (`GuardbotProcess`), `free_port`;
- fake_homeserver: the one scripted homeserver (`FakeHomeserver`: answers, failures, slowness
  and rate limits per route on cue, every request recorded) for the tests of tests/<part>/
  that need a homeserver (the `fake_hs` and `guard_on_fake` fixtures) and bench/fakehs.py;
- cli: guardbot's command line run as an admin runs it, on config files edited from the example;
- stores: the durable stores as the database tests use them;
- queries: what tests read straight from guardbot's database;
- clock: a clock the test moves, a wake-up that counts; metrics: reading the counters;
- matrix_client: a small client-server API client for real users and guests, `wait_for`;
- rooms: a listed room guardbot guards, waiting for a member's removal or a notice;
- pwlu_client: the named-guest (PWLU) API, DM and reminders as a client sees them;
- entrypoint: docker/entrypoint.sh run as a container runs it;
- postgres: the PostgreSQL server the database tests also run on (GUARDBOT_TEST_POSTGRES);
- the fault suite's pieces: harness (its size, secrets, the rooms' record from the homeserver,
  bounded retries), storm (a guest storm and its verdict), inprocess (guardbot's application
  served in-process for fuzzing), rawhttp (HTTP over a raw socket), fuzz (hypothesis
  strategies for hostile input).
"""
