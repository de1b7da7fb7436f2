"""SMS through an adapter: `sms_backend()` is the class `settings.SMS_BACKEND` names.

Every backend takes the message's idempotency key (the notification's uid) and returns the
provider's id of the message. The console and file backends are for development and tests
(the file backend appends one JSON line per message, like Django's file email backend); the
Twilio backend speaks Twilio's Messages REST API (form-encoded POST, basic auth), with its
credentials from settings. It is never called against the network in tests: its request is
built by `request_for` and checked there.
"""

import base64
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib import parse, request

from django.conf import settings
from django.utils.module_loading import import_string


class SmsError(Exception):
    """The provider refused or could not be reached: the task retries with backoff."""


class SmsBackend(Protocol):
    def send(self, *, to: str, body: str, idempotency_key: str) -> str: ...


class ConsoleSmsBackend:
    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        sys.stdout.write(f"SMS to {to} [{idempotency_key}]\n{body}\n")
        return f"console-{idempotency_key}"


class FileSmsBackend:
    """Appends `{"to", "body", "key"}` to `settings.SMS_FILE_PATH/sms.jsonl`."""

    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        folder = Path(settings.SMS_FILE_PATH)
        folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"to": to, "body": body, "key": idempotency_key})
        with open(folder / "sms.jsonl", "a", encoding="utf-8") as out:
            out.write(line + "\n")
        return f"file-{idempotency_key}"


@dataclass(frozen=True)
class TwilioSmsBackend:
    account_sid: str = ""
    auth_token: str = ""
    sender: str = ""
    timeout: float = 10.0

    @classmethod
    def from_settings(cls) -> "TwilioSmsBackend":
        return cls(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_FROM)

    def request_for(self, *, to: str, body: str, idempotency_key: str) -> request.Request:
        url = f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        data = parse.urlencode({"To": to, "From": self.sender, "Body": body}).encode()
        auth = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.Request(
            url,
            data=data,
            method="POST",
            headers={
                "Authorization": f"Basic {auth}",
                "Content-Type": "application/x-www-form-urlencoded",
                "I-Twilio-Idempotency-Token": idempotency_key,
            },
        )

    def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        outgoing = self.request_for(to=to, body=body, idempotency_key=idempotency_key)
        try:
            with request.urlopen(outgoing, timeout=self.timeout) as answer:  # noqa: S310
                return str(json.loads(answer.read())["sid"])
        except (OSError, KeyError, ValueError) as error:
            raise SmsError(str(error)) from error


def sms_backend() -> SmsBackend:
    cls = import_string(settings.SMS_BACKEND)
    return cls.from_settings() if hasattr(cls, "from_settings") else cls()
