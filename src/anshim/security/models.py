from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from anshim.security.roles import Role


class User(AbstractUser):
    """A staff member or an external expert. Victims never have accounts."""

    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    display_name = models.CharField(_("display name"), max_length=100, blank=True)
    preferred_language = models.CharField(
        _("language"), max_length=8, default="ko", choices=[("ko", "한국어"), ("en", "English")]
    )

    class Meta:
        verbose_name = _("staff user")
        verbose_name_plural = _("staff users")

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def role_enum(self) -> Role | None:
        return Role(self.role) if self.role else None
