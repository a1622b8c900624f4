from django.db import migrations, models


class Migration(migrations.Migration):
    """Named as every other limited row's time, so one hourly limit counts them all."""

    dependencies = [
        ("chat", "0015_personal_data_purge"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="cobrowsecodemiss", name="chat_cobrowse_miss_window"),
        migrations.RenameField(model_name="cobrowsecodemiss", old_name="tried_at", new_name="created_at"),
        migrations.AddIndex(
            model_name="cobrowsecodemiss",
            index=models.Index(fields=["helper", "created_at"], name="chat_cobrowse_miss_window"),
        ),
    ]
