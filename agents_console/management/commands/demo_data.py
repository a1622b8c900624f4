"""Load the demo: the service catalogue, a kiosk and one login per role (development only)."""

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents_console.models import CannedResponse, Guide
from agents_console.roles import Role
from chat.models import OpeningHours
from kiosk.models import Service, ServiceCategory

CATALOGUE = [
    (
        "Bins and recycling",
        [
            (
                "Report a missed bin collection",
                "report-missed-bin",
                "/services/report-missed-bin/",
                True,
                "Ask for the address and bin colour. Collections are re-run within two working days.",
            ),
            (
                "Book a bulky waste collection",
                "book-bulky-waste",
                "https://millbrook.example.gov.uk/bulky-waste",
                True,
                "Payment by card is needed; never ask the resident to read card numbers aloud.",
            ),
        ],
    ),
    (
        "Council Tax",
        [
            (
                "Sign up for Council Tax e-billing",
                "council-tax-ebilling",
                "/services/council-tax-ebilling/",
                True,
                "The Council Tax account number is on the top right of the paper bill.",
            ),
            (
                "Pay your Council Tax",
                "pay-council-tax",
                "https://millbrook.example.gov.uk/council-tax/pay",
                True,
                "Let the resident type card details themselves; co-browse masks card fields.",
            ),
            (
                "Tell us you are moving home",
                "council-tax-moving",
                "https://millbrook.example.gov.uk/council-tax/move",
                True,
                "",
            ),
        ],
    ),
    (
        "Parking",
        [
            (
                "Apply for a resident parking permit",
                "resident-parking-permit",
                "/services/resident-parking-permit/",
                True,
                "Needs the vehicle registration and proof of address.",
            ),
        ],
    ),
    (
        "Business",
        [
            (
                "Sign up for business rates e-billing",
                "business-rates-ebilling",
                "https://millbrook.example.gov.uk/business-rates/ebilling",
                False,
                "",
            ),
            (
                "Apply for a premises licence",
                "premises-licence",
                "https://millbrook.example.gov.uk/licensing/premises",
                False,
                "",
            ),
        ],
    ),
    (
        "Housing and planning",
        [
            (
                "Join the housing register",
                "housing-register",
                "https://millbrook.example.gov.uk/housing/register",
                True,
                "",
            ),
            (
                "Upload planning documents",
                "planning-upload",
                "https://millbrook.example.gov.uk/planning/upload",
                False,
                "",
            ),
        ],
    ),
]

CANNED = [
    ("Welcome", "Hello, I'm here to help. I will guide you so you can do it yourself next time.", None),
    (
        "Proof of address",
        "You can use a Council Tax bill or a utility bill from the last three months.",
        "resident-parking-permit",
    ),
    (
        "Council Tax account number",
        "Your account number is the 8-digit number at the top right of your bill.",
        "council-tax-ebilling",
    ),
    (
        "Missed bin: when",
        "We will collect it within two working days. You do not need to do anything else.",
        "report-missed-bin",
    ),
]

GUIDES = [
    (
        "report-missed-bin",
        "Reporting a missed bin",
        [
            "Ask the resident to open 'Report a missed bin collection'.",
            "Let them type their postcode and choose their address.",
            "Ask which bin was missed and when it was due.",
            "They submit and note the reference number.",
        ],
    ),
    (
        "resident-parking-permit",
        "Applying for a parking permit",
        [
            "Check they have the vehicle registration and proof of address.",
            "Let them enter the registration themselves (point at the field if needed).",
            "Explain the permit zone shown on screen.",
            "They submit and keep the reference number.",
        ],
    ),
]

DEMO_USERS = [
    ("advisor", "Alex", "Advisor", Role.ADVISOR, "advisor-demo-pass"),
    ("volunteer", "Vic", "Volunteer", Role.VOLUNTEER, "volunteer-demo-pass"),
    ("supervisor", "Sam", "Supervisor", Role.SUPERVISOR, "supervisor-demo-pass"),
]


class Command(BaseCommand):
    help = "Load demo catalogue, kiosk and staff logins. Refuses to run unless DJANGO_DEBUG is on."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Where the demo is served.")

    @transaction.atomic
    def handle(self, *args, base_url: str, **options):
        if not settings.DEBUG:
            raise CommandError("Demo logins have known passwords; load them only with DJANGO_DEBUG=1.")
        for position, (category_name, services) in enumerate(CATALOGUE):
            category, _ = ServiceCategory.objects.update_or_create(
                slug=category_name.lower().replace(" ", "-"), defaults={"name": category_name, "position": position}
            )
            for index, (name, slug, url, kiosk_allowed, guidance) in enumerate(services):
                Service.objects.update_or_create(
                    slug=slug,
                    defaults={
                        "name": name,
                        "category": category,
                        "url": url,
                        "kiosk_allowed": kiosk_allowed,
                        "helper_guidance": guidance,
                        "position": index,
                    },
                )
        # Long demo hours so the loop can be tried at most times of day; a council would set
        # its real hours and closure dates in the admin.
        if not OpeningHours.objects.exists():
            OpeningHours.objects.bulk_create(
                OpeningHours(weekday=day, opens_at=datetime.time(7), closes_at=datetime.time(22)) for day in range(7)
            )
        for title, body, slug in CANNED:
            CannedResponse.objects.update_or_create(
                title=title, defaults={"body": body, "service": Service.objects.filter(slug=slug).first()}
            )
        for slug, title, steps in GUIDES:
            Guide.objects.update_or_create(
                title=title, defaults={"service": Service.objects.get(slug=slug), "steps": "\n".join(steps)}
            )
        User = get_user_model()
        for username, first, last, role, password in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username, defaults={"first_name": first, "last_name": last})
            user.set_password(password)
            user.is_staff = role == Role.SUPERVISOR
            user.save()
            user.groups.set([Group.objects.get(name=role.value)])

        base = base_url.rstrip("/")
        self.stdout.write(self.style.SUCCESS("\nDo It Online Assist demo is ready."))
        self.stdout.write(f"  Council website with chat widget: {base}/")
        self.stdout.write(f"  Reception kiosk:                  {base}/kiosk/")
        self.stdout.write("    (it shows a pairing code: approve it as the supervisor under Kiosks in the console)")
        self.stdout.write(f"  Advisor console:                  {base}/console/")
        self.stdout.write(f"  Admin (supervisors):              {base}/admin/")
        self.stdout.write("  Webchat answers 07:00-22:00 every day (change it in the admin); start a console")
        self.stdout.write("  session first, or the widget offers to leave a message instead.")
        self.stdout.write("  Demo logins (development only):")
        for username, _first, _last, role, password in DEMO_USERS:
            self.stdout.write(f"    {role.label:<18} {username} / {password}")
        self.stdout.write("")
