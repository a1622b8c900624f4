"""Give the roles their permissions on the console's and chat's newer models."""

import importlib

from django.db import migrations

GRANTS = {
    "supervisor": [
        ("agents_console", "cannedresponse", ["add", "change", "delete", "view"]),
        ("agents_console", "guide", ["add", "change", "delete", "view"]),
        ("agents_console", "helperprofile", ["change", "view"]),
        ("agents_console", "consolesettings", ["change", "view"]),
        ("chat", "openinghours", ["add", "change", "delete", "view"]),
        ("chat", "closuredate", ["add", "change", "delete", "view"]),
        ("chat", "callbackrequest", ["change", "view"]),
    ],
    "advisor": [
        ("agents_console", "cannedresponse", ["view"]),
        ("agents_console", "guide", ["view"]),
        ("chat", "callbackrequest", ["change", "view"]),
    ],
    "volunteer": [
        ("agents_console", "cannedresponse", ["view"]),
        ("agents_console", "guide", ["view"]),
    ],
}


def grant(apps, schema_editor):
    roles = importlib.import_module("agents_console.migrations.0002_roles")
    roles.grant_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("agents_console", "0004_console_workspace"),
        ("chat", "0003_console_workspace"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
