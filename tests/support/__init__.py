"""Helpers shared by the tests and by the fixture scripts in tools/fixtures/ (seeded weights,
signal makers). On the test path through pytest's ``pythonpath = ["tests"]``; fixture scripts
add ``tests/`` to ``sys.path`` themselves."""
