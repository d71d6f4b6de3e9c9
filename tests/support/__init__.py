"""What the tests share: helper modules and pytest fixture plugins.

Test folders hold only ``test_*.py`` and ``conftest.py``; anything a test imports lives here.
Fixture plugins (``*_fixtures.py``) are registered once, in ``tests/conftest.py``.
"""
