import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_wsgi_application()

# What loading the application made lives as long as the process: moved out of the cyclic
# collector's reach, its full passes walk only what requests make (docs/scaling.md#pages).
gc.freeze()
