"""Django's own words that its Korean catalogue does not translate yet.

Django 6's empty choice of every select ("- Select an option -", BLANK_CHOICE_LABEL) has an
empty msgstr in Django's ko catalogue; the same msgid in this app's catalogue gives it Korean
(app catalogues are merged over Django's). Marked here so that makemessages keeps it.
"""

from django.utils.translation import gettext_noop

UNTRANSLATED_BY_DJANGO = (gettext_noop("- Select an option -"),)
