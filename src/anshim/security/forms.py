"""Staff sign-in forms. Wrong input gives a clear message, never a 500."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from anshim.security import services
from anshim.security.middleware import client_address

TOKEN_DIGITS = 6
# Backup codes: django-otp static tokens (8 base32 characters) or the demo's printed 10.
BACKUP_CODE_CHARS = (6, 16)


class LoginForm(forms.Form):
    username = forms.CharField(
        label=_("Username"), max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("Password"), strip=False, max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    error_messages = {
        "invalid": _("The username or password is wrong. Check them and try again."),
        "inactive": _("This account is disabled. Ask a supervisor."),
    }

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        self.request = request
        self.user: Any = None
        self.address_locked_out = False
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        username, password = data.get("username"), data.get("password")
        if username and password:
            address = client_address(self.request)
            if services.address_locked_out(address):
                self._lock_out()
            # Axes (the first backend) counts failures and refuses locked-out pairs.
            self.user = authenticate(self.request, username=username, password=password)
            if self.user is None:
                if services.address_locked_out(address):
                    self._lock_out()
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
            if not self.user.is_active:
                raise forms.ValidationError(self.error_messages["inactive"], code="inactive")
        return data

    def _lock_out(self) -> None:
        """Too many failures from this address across usernames: AxesMiddleware turns the
        response into the lockout page (429), whichever account was tried."""
        self.request.axes_locked_out = True  # type: ignore[attr-defined]
        self.address_locked_out = True
        raise forms.ValidationError(self.error_messages["invalid"], code="locked_out")


class TokenForm(forms.Form):
    token = forms.CharField(
        label=_("6-digit code from your authenticator app"), min_length=TOKEN_DIGITS,
        max_length=TOKEN_DIGITS,
        widget=forms.TextInput(attrs={
            "autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9]{6}",
            "autofocus": True,
        }),
        error_messages={
            "required": _("Enter the 6-digit code."),
            "min_length": _("The code has 6 digits."),
            "max_length": _("The code has 6 digits."),
        },
    )

    def clean_token(self) -> str:
        token = "".join(self.cleaned_data["token"].split())
        if not token.isdigit():
            raise forms.ValidationError(_("The code has digits only."), code="digits")
        return token


class SignInTokenForm(TokenForm):
    """The second sign-in step: the authenticator's code, or one of the backup codes (used up
    on success) for when the phone is not at hand."""

    backup_code = forms.CharField(
        label=_("Backup code"), required=False, max_length=40, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none",
                                      "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["token"].required = False

    def clean_token(self) -> str:
        if not self.cleaned_data.get("token"):
            return ""
        return super().clean_token()

    def clean_backup_code(self) -> str:
        code = "".join(ch for ch in self.cleaned_data.get("backup_code", "").lower()
                       if ch.isalnum())
        if not code:
            return ""
        low, high = BACKUP_CODE_CHARS
        if not (low <= len(code) <= high and code.isascii()):
            raise forms.ValidationError(
                _("A backup code has 8 to 10 letters and digits, as printed."), code="format")
        return code

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "token" in self.errors or "backup_code" in self.errors:
            return data
        if not data.get("token") and not data.get("backup_code"):
            self.add_error("token", forms.ValidationError(
                _("Enter the 6-digit code."), code="required"))
        elif data.get("token") and data.get("backup_code"):
            self.add_error("backup_code", forms.ValidationError(
                _("Enter either the 6-digit code or a backup code, not both."), code="both"))
        return data
