"""What the kiosk app announces to higher apps, which it never imports."""

from django.dispatch import Signal

# Sent after the commit that ends a visit, with `visit_id` and `reason`: the visit's
# conversations must end and their tokens stop working.
visit_ended = Signal()
