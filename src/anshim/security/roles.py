"""Staff roles. The access policy (`anshim.security.policy`) is the only place that
interprets them."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    COUNSELOR = "counselor", _("Counselor")
    ERASURE = "erasure", _("Erasure specialist")
    PREVENTION = "prevention", _("Prevention officer")
    EXPERT = "expert", _("External expert")
    SUPERVISOR = "supervisor", _("Supervisor")
    ADMIN = "admin", _("Administrator")
