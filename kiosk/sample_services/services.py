"""Writes of the sample services: a completed form becomes a submission with a reference number."""

import logging
import secrets
from typing import Any

from django.db import IntegrityError, transaction

from kiosk.models import KioskVisit, ServiceSubmission

logger = logging.getLogger(__name__)

REFERENCE_PREFIXES = {
    "report-missed-bin": "MB",
    "resident-parking-permit": "PP",
    "council-tax-ebilling": "CT",
}
# Letters and digits a resident cannot misread or mistype over the phone: no 0/O or 1/I.
REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
REFERENCE_LENGTH = 6
REFERENCE_ATTEMPTS = 10


def reference_generate(*, service_slug: str) -> str:
    """A fresh reference such as ``MB-7KX3QP``; not yet checked for uniqueness."""
    code = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
    return f"{REFERENCE_PREFIXES[service_slug]}-{code}"


@transaction.atomic
def submission_create(*, service_slug: str, data: dict[str, Any], visit: KioskVisit | None) -> ServiceSubmission:
    """Store a completed sample service under a new, unique reference number.

    Nobody is notified. Raises ``KeyError`` for an unknown service, and ``RuntimeError`` if
    no free reference turns up (practically impossible with 32**6 codes per service).
    """
    for _attempt in range(REFERENCE_ATTEMPTS):
        reference = reference_generate(service_slug=service_slug)
        # A savepoint, so a clash on the unique reference leaves the outer transaction usable.
        try:
            with transaction.atomic():
                submission = ServiceSubmission.objects.create(
                    service_slug=service_slug, reference=reference, data=data, visit=visit
                )
        except IntegrityError:
            logger.warning("Reference clash for service %s; retrying", service_slug)
            continue
        logger.info("Submission %s created for service %s", submission.pk, service_slug)
        return submission
    raise RuntimeError(f"No free reference for {service_slug} after {REFERENCE_ATTEMPTS} attempts")
