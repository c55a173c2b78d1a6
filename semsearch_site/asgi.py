"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

from semsearch_site.bootstrap import data_dir_prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "semsearch_site.settings")
data_dir_prepare()
application = get_asgi_application()
