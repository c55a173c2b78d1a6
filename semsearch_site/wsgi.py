"""WSGI entry point (gunicorn ``semsearch_site.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

from semsearch_site.bootstrap import data_dir_prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "semsearch_site.settings")
data_dir_prepare()
application = get_wsgi_application()
