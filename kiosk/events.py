"""Channel-layer groups and events of the kiosk app.

The advisor console listens to `kiosk.devices`; each kiosk's own socket listens to its device
group. Payloads hold only JSON primitives (they cross Redis as msgpack).
"""

from config import realtime
from kiosk.models import KioskDevice

DEVICE_CHANGED = "kiosk.device_changed"
# Told to one kiosk's sockets: run the privacy wipe now / go back to the pairing screen.
WIPE_REQUESTED = "kiosk.wipe_requested"
CREDENTIAL_REVOKED = "kiosk.credential_revoked"


def devices_group() -> str:
    """Supervisors' kiosk pages: every device's state as it changes."""
    return "kiosk.devices"


def device_group(device_id: int) -> str:
    """The sockets of one kiosk's browser."""
    return f"kiosk.device.{device_id}"


def broadcast_device_changed(device: KioskDevice) -> None:
    from kiosk.selectors import device_payload

    realtime.broadcast(groups=[devices_group()], event_type=DEVICE_CHANGED, device=device_payload(device))


def broadcast_to_device(device_id: int, event_type: str) -> None:
    realtime.broadcast(groups=[device_group(device_id)], event_type=event_type, device_id=device_id)
