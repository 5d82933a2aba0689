"""Sending an alert: a webhook POST (JSON) and an e-mail through SMTP."""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage

from .alert import Alert
from .settings import AlertSettings, Mail


def post_webhook(url: str, alert: Alert, timeout: float) -> None:
    """POST ``{"text": …, <facts>}``: ``text`` is what chat webhooks show.

    The standard library's client, which logs nothing: a webhook URL carries its secret,
    and an HTTP client logging each request would write it in the connector's log.
    """
    body = {"text": f"{alert.subject}\n\n{alert.text()}", **alert.data}
    request = urllib.request.Request(  # noqa: S310 - the URL's scheme is checked (http/https)
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "dossiersync-alerts"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        response.read()


def send_mail(mail: Mail, alert: Alert, timeout: float) -> None:
    message = EmailMessage()
    message["Subject"] = alert.subject
    message["From"] = mail.sender
    message["To"] = ", ".join(mail.recipients)
    message.set_content(alert.text() + "\n")
    with smtplib.SMTP(mail.host, mail.port, timeout=timeout) as smtp:
        if mail.starttls:
            smtp.starttls()
        if mail.username is not None and mail.password is not None:
            smtp.login(mail.username, mail.password.reveal())
        smtp.send_message(message)


def deliver(settings: AlertSettings, alert: Alert) -> list[str]:
    """Send the alert everywhere it is configured to go; what failed, in words (the
    caller removes secrets from them). One channel failing does not stop the other."""
    failures = []
    if settings.webhook_url is not None:
        try:
            post_webhook(settings.webhook_url.reveal(), alert, settings.timeout_seconds)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            failures.append(f"webhook: {type(exc).__name__}: {exc}")
    if settings.mail is not None:
        try:
            send_mail(settings.mail, alert, settings.timeout_seconds)
        except (smtplib.SMTPException, OSError) as exc:
            failures.append(f"e-mail through {settings.mail.host}: {type(exc).__name__}: {exc}")
    return failures
