"""Print a Chromium enterprise policy (JSON) that locks a kiosk to this site's kiosk services.

The kiosk's own lock-down (kiosk.middleware) refuses other pages of this site; this policy is
the second line of defence on the device itself. See docs/kiosk-setup.md.
"""

import json
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from kiosk.models import Service


def chromium_policy(base_url: str, idle_minutes: int) -> dict:
    base = urlsplit(base_url)
    if base.scheme not in ("http", "https") or not base.netloc:
        raise ValueError("base URL must be like https://assist.example.gov.uk")
    site = f"{base.scheme}://{base.netloc}"
    allowed = [f"{site}/kiosk/", f"{site}/static/", f"{site}/chat/widget/"]
    for url in Service.objects.filter(is_active=True, kiosk_allowed=True).values_list("url", flat=True):
        allowed.append(f"{site}{url}" if url.startswith("/") else url)
    return {
        "URLBlocklist": ["*"],
        "URLAllowlist": sorted(set(allowed)),
        "HomepageLocation": f"{site}/kiosk/",
        "RestoreOnStartup": 4,
        "RestoreOnStartupURLs": [f"{site}/kiosk/"],
        # Idle: clear everything a resident could have left, then start again at the kiosk home.
        "IdleTimeout": idle_minutes,
        "IdleTimeoutActions": [
            "clear_browsing_history",
            "clear_download_history",
            "clear_cookies_and_other_site_data",
            "clear_cached_images_and_files",
            "clear_password_signing",
            "clear_autofill",
            "clear_site_settings",
            "reload_pages",
        ],
        "BrowserSignin": 0,
        "SyncDisabled": True,
        "PasswordManagerEnabled": False,
        "AutofillAddressEnabled": False,
        "AutofillCreditCardEnabled": False,
        "DownloadRestrictions": 3,
        "DeveloperToolsAvailability": 2,
        "IncognitoModeAvailability": 1,
        "PrintingEnabled": False,
        "BrowserGuestModeEnabled": False,
        "BrowserAddPersonEnabled": False,
        "EditBookmarksEnabled": False,
        "TranslateEnabled": False,
        "DefaultNotificationsSetting": 2,
        "DefaultGeolocationSetting": 2,
        "AudioCaptureAllowed": False,
        "VideoCaptureAllowed": False,
        "AllowFileSelectionDialogs": False,
        "ExtensionInstallBlocklist": ["*"],
    }


class Command(BaseCommand):
    help = "Print a Chromium enterprise policy for a kiosk, built from the catalogue's kiosk services."

    def add_arguments(self, parser):
        parser.add_argument("base_url", help="Where kiosks reach this site, e.g. https://assist.example.gov.uk")
        parser.add_argument(
            "--idle-minutes",
            type=int,
            default=5,
            help="Chromium's own idle wipe, after the kiosk's (which is per kiosk, 2 minutes by default).",
        )

    def handle(self, *args, base_url, idle_minutes, **options):
        try:
            policy = chromium_policy(base_url, idle_minutes)
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(json.dumps(policy, indent=2))
