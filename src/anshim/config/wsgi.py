import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anshim.config.settings")
application = get_wsgi_application()

# After setup, before the first request: production mode with development defaults (the
# insecure SECRET_KEY, the key file beside the database) stops the server here, saying why.
from anshim.security.startup import refuse_insecure_start  # noqa: E402

refuse_insecure_start("web server")
