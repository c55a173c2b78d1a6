"""A pytest plugin (``-p tests.data_dir_plugin`` in pyproject) that prepares the data folder before pytest-django
reads the settings, as every entry point does (``semsearch_site.bootstrap``)."""

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests() -> None:
    from semsearch_site.bootstrap import data_dir_prepare

    data_dir_prepare()
