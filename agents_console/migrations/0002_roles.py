"""Create the three console roles as Django groups with their model permissions."""

import importlib

from django.db import migrations

# (app_label, model, actions) each role holds. Supervisors also manage the catalogue and
# kiosks in the admin; advisors and volunteers only log help and read the catalogue.
ROLE_PERMISSIONS = {
    "supervisor": [
        ("kiosk", "servicecategory", ["add", "change", "delete", "view"]),
        ("kiosk", "service", ["add", "change", "delete", "view"]),
        ("kiosk", "kioskdevice", ["add", "change", "delete", "view"]),
        ("chat", "conversation", ["view"]),
        ("chat", "message", ["view"]),
        ("agents_console", "assistedtransaction", ["add", "change", "view"]),
    ],
    "advisor": [
        ("kiosk", "service", ["view"]),
        ("agents_console", "assistedtransaction", ["add", "view"]),
    ],
    "volunteer": [
        ("kiosk", "service", ["view"]),
        ("agents_console", "assistedtransaction", ["add"]),
    ],
}


def create_roles(apps, schema_editor):
    grant_permissions(apps, ROLE_PERMISSIONS)
    # Later migrations add grants for later models; tests that recreate the roles get them all.
    later = importlib.import_module("agents_console.migrations.0005_role_permissions")
    if all(apps.is_installed(label) for label in ("agents_console", "chat")):
        try:
            apps.get_model("agents_console", "Guide")
        except LookupError:
            return
        grant_permissions(apps, later.GRANTS)


def grant_permissions(apps, role_permissions):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    for role, grants in role_permissions.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, model, actions in grants:
            # Permissions are normally created after migrations run; make them now so the
            # groups are complete on a fresh database.
            content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
            for action in actions:
                permission, _ = Permission.objects.get_or_create(
                    content_type=content_type,
                    codename=f"{action}_{model}",
                    defaults={"name": f"Can {action} {model}"},
                )
                group.permissions.add(permission)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("agents_console", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("kiosk", "0001_initial"),
        ("chat", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
